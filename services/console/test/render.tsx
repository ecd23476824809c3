/** Rendering a console page for a spec: inside the session of a fake server, at a console URL. */
import { render } from '@testing-library/preact';
import type { ComponentChildren } from 'preact';
import { App } from '../src/app';
import { type Leave, SessionProvider } from '../src/session';
import type { FakeServer } from './fake-server';

/** What a rendering may replace: where the browser is sent off to (the provider's logout). */
export interface RenderOptions {
  leave?: Leave;
}

/** Renders `children` (a page) inside the fake server's session. */
export function renderWithSession(server: FakeServer, children: ComponentChildren, options: RenderOptions = {}) {
  return render(
    <SessionProvider api={server.api} leave={options.leave}>
      {children}
    </SessionProvider>,
  );
}

/** Renders the whole app at `url` (a console path such as `/ui/feed`). */
export function renderApp(server: FakeServer, url: string, options: RenderOptions = {}) {
  // jsdom lays nothing out, so it has no scrolling; the app scrolls to the top after a route change.
  window.scrollTo = () => undefined;
  history.replaceState(null, '', url);
  return renderWithSession(server, <App />, options);
}
