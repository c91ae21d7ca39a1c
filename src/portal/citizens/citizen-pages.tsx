import { Alert, CsrfField, Layout, type LayoutProps } from '../../platform/views/layout.js';
import type { Citizen, CitizenPersonalData } from './citizen.js';
import { fullName } from './citizen.js';
import type { OrganizationDetails } from './citizen.service.js';

type Chrome = Omit<LayoutProps, 'title' | 'children'>;

const GENDER = { M: 'Мужской', F: 'Женский' } as const;

/** 1990-03-15 → 15.03.1990, as Russian documents write dates. */
export function ruDate(iso: string): string {
  const [y, m, d] = iso.slice(0, 10).split('-');
  return `${d}.${m}.${y}`;
}

function Confirmed(props: { ok: boolean }) {
  return props.ok ? (
    <span class="status-ok">подтверждён</span>
  ) : (
    <span class="status-bad">не подтверждён</span>
  );
}

export function PersonalDataPage(props: {
  chrome: Chrome;
  csrf: string;
  citizen: Citizen;
  personal: CitizenPersonalData;
  organizations: { id: string; role: string; details: OrganizationDetails }[];
  emailCodeSent?: boolean;
  error?: string | undefined;
  notice?: string | undefined;
}) {
  const { personal: p, citizen } = props;
  return (
    <Layout {...props.chrome} title="Личные данные">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      {props.notice ? <Alert kind="success">{props.notice}</Alert> : null}
      <section class="card" data-testid="personal-data">
        <h2>{fullName(p)}</h2>
        <dl class="facts">
          <dt>Дата рождения</dt>
          <dd>{ruDate(p.birthDate)}</dd>
          <dt>Место рождения</dt>
          <dd>{p.birthPlace}</dd>
          <dt>Пол</dt>
          <dd>{GENDER[p.gender]}</dd>
          <dt>СНИЛС</dt>
          <dd data-testid="personal-snils">{p.snils}</dd>
          <dt>ИНН</dt>
          <dd>{p.inn}</dd>
        </dl>
      </section>
      <section class="card">
        <h2>Паспорт гражданина РФ</h2>
        <dl class="facts">
          <dt>Серия и номер</dt>
          <dd>
            {p.passport.series} {p.passport.number}
          </dd>
          <dt>Дата выдачи</dt>
          <dd>{ruDate(p.passport.issueDate)}</dd>
          <dt>Кем выдан</dt>
          <dd>{p.passport.issuedBy}</dd>
          <dt>Код подразделения</dt>
          <dd>{p.passport.divisionCode}</dd>
        </dl>
      </section>
      <section class="card">
        <h2>Контакты и адреса</h2>
        <dl class="facts">
          <dt>Мобильный телефон</dt>
          <dd>
            {p.phone} · <Confirmed ok={citizen.phoneConfirmed} />
          </dd>
          <dt>Электронная почта</dt>
          <dd>
            {p.email ?? 'не указана'}
            {p.email ? (
              <>
                {' · '}
                <Confirmed ok={citizen.emailConfirmed} />
              </>
            ) : null}
          </dd>
          <dt>Адрес регистрации</dt>
          <dd>{p.addresses.registration}</dd>
          <dt>Адрес проживания</dt>
          <dd>{p.addresses.residence ?? 'совпадает с адресом регистрации'}</dd>
        </dl>
      </section>
      {p.email && !citizen.emailConfirmed ? (
        props.emailCodeSent ? (
          <form class="card" method="post" action="/profile/email/confirm" autocomplete="off">
            <CsrfField token={props.csrf} />
            <p>Мы отправили код на {p.email}. Введите его, чтобы подтвердить почту.</p>
            <label for="email-code">Код из письма</label>
            <input
              type="text"
              id="email-code"
              name="code"
              inputmode="numeric"
              pattern="[0-9]{6}"
              maxLength={6}
              required
              data-testid="email-code"
            />
            <div>
              <button type="submit" data-testid="email-confirm">
                Подтвердить почту
              </button>
            </div>
          </form>
        ) : (
          <form class="card" method="post" action="/profile/email/send-code">
            <CsrfField token={props.csrf} />
            <p>
              Электронная почта не подтверждена: сервисы не смогут присылать на неё уведомления.
            </p>
            <button type="submit" data-testid="email-send-code">
              Подтвердить почту
            </button>
          </form>
        )
      ) : null}
      {props.organizations.length > 0 ? (
        <section class="card">
          <h2>Организации</h2>
          {props.organizations.map((o) => (
            <dl class="facts">
              <dt>Организация</dt>
              <dd>{o.details.shortName}</dd>
              <dt>Роль</dt>
              <dd>{o.role === 'director' ? 'Руководитель' : 'Представитель по доверенности'}</dd>
              <dt>ИНН / КПП</dt>
              <dd>
                {o.details.inn} / {o.details.kpp}
              </dd>
              <dt>ОГРН</dt>
              <dd>{o.details.ogrn}</dd>
            </dl>
          ))}
        </section>
      ) : null}
      <p class="hint">Данные обновлены {ruDate(citizen.personalUpdatedAt.toISOString())}.</p>
    </Layout>
  );
}

export function SecurityPage(props: {
  chrome: Chrome;
  csrf: string;
  citizen: Citizen;
  /** Whether this browser is the one the authenticator app is bound to. */
  thisDevice?: boolean;
  maskedPhone: string;
  enrolment?: { qrDataUrl: string; secret: string } | undefined;
  error?: string | undefined;
  notice?: string | undefined;
}) {
  const { citizen } = props;
  return (
    <Layout {...props.chrome} title="Безопасность">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      {props.notice ? <Alert kind="success">{props.notice}</Alert> : null}
      <section class="card">
        <h2>Вход с подтверждением</h2>
        <p data-testid="second-factor">
          {citizen.secondFactor === 'totp'
            ? `Код из приложения-аутентификатора (${citizen.totpDevice ?? 'устройство'}).`
            : `Код по SMS на номер ${props.maskedPhone}.`}
        </p>
        {citizen.secondFactor === 'totp' ? (
          <p class="hint" data-testid="totp-device">
            {props.thisDevice
              ? 'Приложение привязано к этому устройству. Чтобы войти с другого, понадобится подключить приложение заново с подтверждением по SMS.'
              : 'Приложение привязано к другому устройству. При входе с этого устройства понадобится подключить приложение заново с подтверждением по SMS.'}
          </p>
        ) : null}
        {citizen.secondFactor === 'totp' ? (
          <form method="post" action="/security/totp/remove">
            <CsrfField token={props.csrf} />
            <p>Чтобы снова получать коды по SMS, подтвердите пароль.</p>
            <label for="password">Пароль</label>
            <input type="password" id="password" name="password" required maxLength={256} />
            <div>
              <button type="submit" class="secondary" data-testid="totp-remove">
                Отключить приложение
              </button>
            </div>
          </form>
        ) : props.enrolment ? (
          <form method="post" action="/security/totp/confirm" autocomplete="off">
            <CsrfField token={props.csrf} />
            <p>
              Отсканируйте QR-код в приложении-аутентификаторе или введите ключ вручную, затем
              введите код из приложения.
            </p>
            <img class="qr" src={props.enrolment.qrDataUrl} alt="QR-код для приложения" />
            <p>
              Ключ: <code data-testid="totp-secret">{props.enrolment.secret}</code>
            </p>
            <label for="device">Название устройства</label>
            <input type="text" id="device" name="device" maxLength={64} value="Мой телефон" />
            <label for="code">Код из приложения</label>
            <input
              type="text"
              id="code"
              name="code"
              inputmode="numeric"
              pattern="[0-9]{6}"
              maxLength={6}
              required
              data-testid="totp-code"
            />
            <div>
              <button type="submit" data-testid="totp-confirm">
                Подключить приложение
              </button>
            </div>
          </form>
        ) : (
          <form method="post" action="/security/totp/start">
            <CsrfField token={props.csrf} />
            <p>Можно получать коды не по SMS, а в приложении-аутентификаторе на телефоне.</p>
            <button type="submit" data-testid="totp-start">
              Подключить приложение-аутентификатор
            </button>
          </form>
        )}
      </section>
    </Layout>
  );
}

export function StaffHomePage(props: { chrome: Chrome; title: string; text: string }) {
  return (
    <Layout {...props.chrome} title={props.title}>
      <section class="card">
        <p>{props.text}</p>
      </section>
    </Layout>
  );
}
