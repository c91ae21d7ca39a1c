import { Alert, CsrfField, Layout, type LayoutProps } from '../../platform/views/layout.js';

type Chrome = Omit<LayoutProps, 'title' | 'children'>;

export interface IpBlockView {
  id: string;
  ip: string;
  reason: string;
  /** The partner's name, when the block came from its requests. */
  partner: string | undefined;
  since: Date;
  until: Date;
}

const when = (d: Date) =>
  d.toLocaleString('ru-RU', {
    timeZone: 'Europe/Moscow',
    day: '2-digit',
    month: '2-digit',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });

/** `ip-block-203-0-113-7`, `ip-block-2001-db8--1`: an address as a data-testid. */
export const ipBlockTestId = (ip: string) => `ip-block-${ip.replace(/[.:]/g, '-')}`;

/** «Центр безопасности → Блокировки IP-адресов»: blocks in force, each liftable. */
export function IpBlocksPage(props: {
  chrome: Chrome;
  csrf: string;
  blocks: IpBlockView[];
  notice?: { kind: 'success' | 'info'; text: string } | undefined;
}) {
  return (
    <Layout {...props.chrome} title="Блокировки IP-адресов">
      <p>
        <a href="/security-center">← Центр безопасности</a>
      </p>
      {props.notice ? <Alert kind={props.notice.kind}>{props.notice.text}</Alert> : null}
      <p class="hint">
        Адреса, с которых партнёрский API временно не принимает запросы: после устойчивого
        превышения лимита запросов. Блокировка снимается сама в указанное время или вручную. Снятие
        записывается в журнал аудита.
      </p>
      <div data-testid="ip-blocks-list">
        {props.blocks.length === 0 ? (
          <section class="card">
            <p>Заблокированных адресов нет.</p>
          </section>
        ) : (
          <table>
            <thead>
              <tr>
                <th>IP-адрес</th>
                <th>Причина</th>
                <th>Партнёр</th>
                <th>С</th>
                <th>До</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {props.blocks.map((b) => (
                <tr data-testid={ipBlockTestId(b.ip)}>
                  <td>
                    <code data-testid="ip-block-ip">{b.ip}</code>
                  </td>
                  <td data-testid="ip-block-reason">{b.reason}</td>
                  <td data-testid="ip-block-partner">{b.partner ?? '—'}</td>
                  <td>{when(b.since)}</td>
                  <td data-testid="ip-block-until">{when(b.until)}</td>
                  <td>
                    <form method="post" action={`/security-center/blocks/${b.id}/lift`}>
                      <CsrfField token={props.csrf} />
                      <button type="submit" class="secondary" data-testid="ip-block-lift">
                        Снять блокировку
                      </button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </Layout>
  );
}
