/**
 * Webhook secrets at rest: sealed by the at-rest cipher (`secrets.key`) before they are stored, opened only to sign a
 * delivery, and sealed again at start-up when stored in plain text or under a previous key.
 */
import type { SecretCipher } from '@lading/access';
import type { SqlExecutor } from '@lading/metadata';
import { resealed } from '@lading/access';
import { replaceWebhookSecret, storedWebhookSecrets } from './webhook-store';

/** The associated data that binds a sealed secret to its subscription. */
const contextOf = (subscriptionId: string) => `webhook ${subscriptionId}`;

/** The stored form of a subscription's secret. */
export function sealWebhookSecret(cipher: SecretCipher, subscriptionId: string, secret: string): string {
  return cipher.seal(secret, contextOf(subscriptionId));
}

/** A subscription's secret from its stored form; throws SecretCipherError when it cannot be opened. */
export function openWebhookSecret(cipher: SecretCipher, subscription: { id: string; secret: string }): string {
  return cipher.open(subscription.secret, contextOf(subscription.id));
}

/**
 * Seals every stored secret that is not sealed under the current key (plain, or under a previous key); resolves with
 * how many it sealed. Rejects (SecretCipherError) when one cannot be opened, so that a process with the wrong key
 * stops at start-up instead of failing every delivery.
 */
export async function sealStoredWebhookSecrets(db: SqlExecutor, cipher: SecretCipher): Promise<number> {
  let sealed = 0;
  for (const { id, secret } of await storedWebhookSecrets(db)) {
    const next = resealed(cipher, secret, contextOf(id));
    if (next !== null && (await replaceWebhookSecret(db, id, secret, next))) sealed++;
  }
  return sealed;
}
