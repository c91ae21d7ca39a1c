import { Alert, CsrfField, Layout, type LayoutProps } from '../views/layout.js';

type Look = Pick<LayoutProps, 'site' | 'theme' | 'demo'>;

export function LoginPage(props: {
  look: Look;
  csrf: string;
  identifierLabel: string;
  identifierHint?: string | undefined;
  username?: string | undefined;
  error?: string | undefined;
  notice?: string | undefined;
}) {
  return (
    <Layout {...props.look} title="Вход">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      {props.notice ? <Alert kind="info">{props.notice}</Alert> : null}
      <form class="card" method="post" action="/login" autocomplete="on">
        <CsrfField token={props.csrf} />
        <label for="username">{props.identifierLabel}</label>
        <input
          type="text"
          id="username"
          name="username"
          data-testid="login-username"
          autocomplete="username"
          required
          maxLength={254}
          value={props.username ?? ''}
        />
        {props.identifierHint ? <p class="hint">{props.identifierHint}</p> : null}
        <label for="password">Пароль</label>
        <input
          type="password"
          id="password"
          name="password"
          data-testid="login-password"
          autocomplete="current-password"
          required
          maxLength={256}
        />
        <div>
          <button type="submit" data-testid="login-submit">
            Войти
          </button>
        </div>
      </form>
    </Layout>
  );
}

export function CodePage(props: {
  look: Look;
  csrf: string;
  method: 'sms' | 'totp';
  maskedPhone?: string | undefined;
  error?: string | undefined;
  notice?: string | undefined;
}) {
  return (
    <Layout {...props.look} title="Подтверждение входа">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      {props.notice ? <Alert kind="info">{props.notice}</Alert> : null}
      <form class="card" method="post" action="/login/code" autocomplete="off">
        <CsrfField token={props.csrf} />
        <p>
          {props.method === 'sms'
            ? `Мы отправили код в SMS на номер ${props.maskedPhone ?? ''}.`
            : 'Введите код из приложения-аутентификатора.'}
        </p>
        <OneTimeCodeInput />
      </form>
      {props.method === 'sms' ? (
        <form method="post" action="/login/code/resend">
          <CsrfField token={props.csrf} />
          <button type="submit" class="secondary" data-testid="otp-resend">
            Отправить код ещё раз
          </button>
        </form>
      ) : null}
      <p>
        <a href="/login">Войти под другой учётной записью</a>
      </p>
    </Layout>
  );
}

/**
 * A TOTP login from a device other than the one the app was enrolled on, step 1: the
 * SMS code proves the phone before the app is enrolled again on this device.
 */
export function DeviceCodePage(props: {
  look: Look;
  csrf: string;
  maskedPhone: string;
  error?: string | undefined;
  notice?: string | undefined;
}) {
  return (
    <Layout {...props.look} title="Вход с нового устройства">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      {props.notice ? <Alert kind="info">{props.notice}</Alert> : null}
      <form class="card" method="post" action="/login/device" autocomplete="off">
        <CsrfField token={props.csrf} />
        <p data-testid="device-new">
          Приложение-аутентификатор подключено на другом устройстве. Чтобы входить с этого
          устройства, подключите приложение заново. Сначала подтвердите вход кодом из SMS,
          отправленного на номер {props.maskedPhone}.
        </p>
        <OneTimeCodeInput />
      </form>
      <form method="post" action="/login/device/resend">
        <CsrfField token={props.csrf} />
        <button type="submit" class="secondary" data-testid="otp-resend">
          Отправить код ещё раз
        </button>
      </form>
      <p>
        <a href="/login">Войти под другой учётной записью</a>
      </p>
    </Layout>
  );
}

/** Step 2: a new secret for the app; its first code binds it to this device and logs in. */
export function DeviceEnrolPage(props: {
  look: Look;
  csrf: string;
  secret: string;
  qrDataUrl: string;
  error?: string | undefined;
  notice?: string | undefined;
}) {
  return (
    <Layout {...props.look} title="Подключение приложения на новом устройстве">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      {props.notice ? <Alert kind="info">{props.notice}</Alert> : null}
      <form class="card" method="post" action="/login/device/totp" autocomplete="off">
        <CsrfField token={props.csrf} />
        <p>
          Отсканируйте QR-код в приложении-аутентификаторе или введите ключ вручную, затем введите
          код из приложения. Прежняя привязка перестанет действовать.
        </p>
        <img class="qr" src={props.qrDataUrl} alt="QR-код для приложения" />
        <p>
          Ключ: <code data-testid="totp-secret">{props.secret}</code>
        </p>
        <label for="code">Код из приложения</label>
        <input
          type="text"
          id="code"
          name="code"
          inputmode="numeric"
          autocomplete="one-time-code"
          pattern="[0-9]{6}"
          maxLength={6}
          required
          data-testid="totp-code"
        />
        <div>
          <button type="submit" data-testid="totp-confirm">
            Подключить и войти
          </button>
        </div>
      </form>
    </Layout>
  );
}

/**
 * The one-time code field and its button (page hooks `otp-code`, `otp-submit`), with a
 * line saying where the code comes from when `hint` is given.
 */
export function OneTimeCodeInput(props: {
  hint?: { method: 'sms' | 'totp'; maskedPhone: string } | undefined;
}) {
  return (
    <>
      {props.hint ? (
        <p>
          {props.hint.method === 'sms'
            ? `Введите код из SMS, отправленного на номер ${props.hint.maskedPhone}.`
            : 'Введите код из приложения-аутентификатора.'}
        </p>
      ) : null}
      <label for="code">Код</label>
      <input
        type="text"
        id="code"
        name="code"
        data-testid="otp-code"
        inputmode="numeric"
        autocomplete="one-time-code"
        pattern="[0-9]{6}"
        maxLength={6}
        required
      />
      <div>
        <button type="submit" data-testid="otp-submit">
          Подтвердить
        </button>
      </div>
    </>
  );
}
