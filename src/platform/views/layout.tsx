import type { ComponentChildren } from 'preact';

export interface NavLink {
  href: string;
  label: string;
}

export interface LayoutProps {
  /** Page title, without the site name. */
  title: string;
  /** Site name shown in the header, e.g. «Госуслуги (песочница)». */
  site: string;
  /** Visual theme: the portal and the bank look different on purpose. */
  theme: 'portal' | 'bank';
  nav?: NavLink[];
  /** Name of the person logged in, shown with a logout button. */
  user?: { name: string; csrf: string; logoutAction: string } | undefined;
  demo?: boolean;
  children?: ComponentChildren;
}

export function Layout(props: LayoutProps) {
  return (
    <html lang="ru">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} — ${props.site}`}</title>
        <link rel="stylesheet" href="/assets/site.css" />
      </head>
      <body class={`theme-${props.theme}`}>
        {props.demo ? (
          <div class="demo-banner" role="note">
            Демонстрационный режим: данные вымышленные, коды видны в /dev/outbox.
          </div>
        ) : null}
        <header class="site-header">
          <a class="site-name" href="/">
            {props.site}
          </a>
          {props.nav && props.nav.length > 0 ? (
            <nav>
              {props.nav.map((link) => (
                <a href={link.href}>{link.label}</a>
              ))}
            </nav>
          ) : null}
          {props.user ? (
            <form method="post" action={props.user.logoutAction} class="logout">
              <span class="user-name">{props.user.name}</span>
              <input type="hidden" name="_csrf" value={props.user.csrf} />
              <button type="submit" data-testid="logout">
                Выйти
              </button>
            </form>
          ) : null}
        </header>
        <main>
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** A message box: errors a person can act on, or notices. */
export function Alert(props: { kind: 'error' | 'info' | 'success'; children?: ComponentChildren }) {
  return (
    <div class={`alert alert-${props.kind}`} role={props.kind === 'error' ? 'alert' : 'status'}>
      {props.children}
    </div>
  );
}

/** The hidden CSRF field every form carries. */
export function CsrfField(props: { token: string }) {
  return <input type="hidden" name="_csrf" value={props.token} />;
}
