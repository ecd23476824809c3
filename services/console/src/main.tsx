/** The console's entry: the stylesheet, the API client, the session, the app. */
import { render } from 'preact';
import { createApi } from './api';
import { App } from './app';
import { SessionProvider } from './session';
import './styles.css';

render(
  <SessionProvider api={createApi()}>
    <App />
  </SessionProvider>,
  document.getElementById('app') as HTMLElement,
);
