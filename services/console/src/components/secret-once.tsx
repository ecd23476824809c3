/**
 * A secret the server shows once (a robot's secret, a personal access token, a webhook's signing secret): shown
 * with a copy button and a warning that it cannot be shown again. Closing it drops the secret from the page's
 * state; nothing keeps it.
 */
import { useEffect, useRef } from 'preact/hooks';
import { CopyButton } from './copy-button';

/** What to show: a heading, the login the secret goes with (if any), and the secret. */
export interface SecretOnceProps {
  title: string;
  login?: string;
  secret: string;
  /**
   * How Lading keeps it and what to do when it is lost; by default that only a hash is kept (a login's secret). A
   * webhook's signing secret is kept sealed instead, since deliveries are signed with it.
   */
  kept?: string;
  /** Called when the user says they have stored it; the parent then forgets the secret. */
  onDone(): void;
}

/** The panel that shows a new secret once. */
export function SecretOnce({ title, login, secret, kept = 'Lading keeps only a hash of it and cannot show it again. If it is lost, create a new one.', onDone }: SecretOnceProps) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <section class="secret" aria-labelledby="secret-heading">
      <h2 id="secret-heading" tabIndex={-1} ref={heading}>
        {title}
      </h2>
      <p class="warning">
        <strong>Copy the secret now.</strong> It is shown only this once: {kept}
      </p>
      <dl class="pairs">
        {login ? (
          <div>
            <dt>Login</dt>
            <dd>
              <code>{login}</code> <CopyButton text={login} label="Copy the login" />
            </dd>
          </div>
        ) : null}
        <div>
          <dt>Secret</dt>
          <dd>
            <code class="secret-value">{secret}</code> <CopyButton text={secret} label="Copy the secret" />
          </dd>
        </div>
      </dl>
      <button type="button" onClick={onDone}>
        I have stored it: hide the secret
      </button>
    </section>
  );
}
