/**
 * The auth service's part of the audit trail: every login attempt (token endpoint and admin API, success or
 * failure, with the client address, never the secret) and every change made through the admin API (the route, its
 * target, the values before and after it with secrets redacted). A login's record is one small transaction of its
 * own; an admin change made through `change` commits its record in the change's own transaction (issue 23), so there
 * is never a change without its record nor a record without its change.
 */
import type { Request, Response, NextFunction, RequestHandler } from 'express';
import { identityOfSubject } from '@lading/access';
import type { LadingConfig } from '@lading/config';
import { AUDIT_EVENT_TYPES, type AdminChange, type AuditDataOf, type EventRequest, type OutboxContext, appendAuditEvent, redactSecrets } from '@lading/events';
import { requestContext } from '@lading/http';
import type { Database } from '@lading/metadata';
import type { Logger } from '@lading/telemetry';

/** What the audit trail of the auth service needs. */
export interface AuthAuditDeps {
  db: Database;
  config: LadingConfig;
  logger: Logger;
  /** The outbox context of the auth service's audit events. */
  events: OutboxContext;
  /** Called after an audit event committed (wakes the outbox relay of this process, if it has one). */
  onEventsCommitted?: () => void;
}

/** A login attempt to record. */
export interface LoginAttempt {
  /** The token subject that logged in (`alice`, `robot$ci`) on success; on failure the name tried if it is an account's, else ''. */
  subject: string;
  result: 'success' | 'failure';
  reason: 'invalid' | 'limited' | null;
  method: 'password' | 'token' | 'robot' | 'refresh';
}

/** Reads the state a change will alter, for its record's `before` (null when the route has no such state). */
export type BeforeReader = (req: Request) => Promise<unknown>;

/** The auth service's audit trail; does nothing when `audit.enabled` is false. */
export interface AuthAudit {
  /** Records a login attempt (resolves once committed). */
  login(req: Request, attempt: LoginAttempt): Promise<void>;
  /**
   * Middleware for the admin API, behind its guard: every POST, PUT, PATCH and DELETE that succeeds is recorded.
   * A route that makes its change through `change` is recorded in the change's transaction; any other (a key
   * rotation, a collection) after its change and before its answer is sent (so a client that saw the answer finds
   * the record). `before` reads the prior state of the routes it knows, ahead of the change.
   */
  adminChanges(before?: BeforeReader): RequestHandler;
  /**
   * Runs an admin change and writes its record in one transaction: `work` makes the change on `tx` and returns the
   * answer to send (null for none), `status` is the answer's status (or reads it from `work`'s result). When `work`
   * throws, or the record cannot be written, the transaction rolls back: nothing changed and nothing recorded (the
   * error answers the request).
   * Without the audit trail (off, or no `adminChanges` in front) it is `work` in a transaction of its own.
   * A request whose change went through here is not recorded again when its answer is sent.
   */
  change: AdminChange;
}

/** What `adminChanges` leaves in `res.locals` for `change`: the state before the change, and whether it was recorded. */
interface PendingChange {
  before: Promise<unknown>;
  recorded: boolean;
}
const PENDING = 'auditPendingChange';

const CHANGES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Creates the auth service's audit trail. */
export function createAuthAudit(deps: AuthAuditDeps): AuthAudit {
  const enabled = deps.config.audit.enabled;

  async function append<T extends typeof AUDIT_EVENT_TYPES.login | typeof AUDIT_EVENT_TYPES.admin>(type: T, data: AuditDataOf<T>, traceparent?: string) {
    await deps.db.transaction((tx) => appendAuditEvent(tx, deps.events, { type, data, traceparent }));
    deps.onEventsCommitted?.();
  }

  return {
    async login(req, attempt) {
      if (!enabled) return;
      const context = requestContext(req, deps.config);
      await append(
        AUDIT_EVENT_TYPES.login,
        { actor: identityOfSubject(attempt.subject), result: attempt.result, reason: attempt.reason, method: attempt.method, request: context.request },
        context.traceparent,
      );
    },

    adminChanges(before) {
      return (req: Request, res: Response, next: NextFunction) => {
        if (!enabled || !CHANGES.has(req.method)) return next();
        const prior = before ? before(req).catch((err: unknown) => (deps.logger.warn({ err }, 'audit: the state before an admin change could not be read'), null)) : Promise.resolve(null);
        const pending: PendingChange = { before: prior, recorded: false };
        res.locals[PENDING] = pending;
        void prior.then((beforeValue) => {
          // Routes that do not make their change through `change` (yet) are recorded after it, as the answer ends.
          holdAnswerForRecord(res, pending, (answer) => {
            const context = requestContext(req, deps.config);
            return append(AUDIT_EVENT_TYPES.admin, adminRecord(req, res, res.statusCode, beforeValue, answer, context.request), context.traceparent).catch((err: unknown) =>
              deps.logger.error({ err, action: `${req.method} ${req.baseUrl}${req.path}` }, 'audit: an admin change was made but its record could not be written'),
            );
          });
          next();
        }, next);
      };
    },

    async change(req, res, status, work) {
      const pending = res.locals[PENDING] as PendingChange | undefined;
      if (!enabled || !pending) return deps.db.transaction(work);
      const beforeValue = await pending.before;
      const context = requestContext(req, deps.config);
      const answer = await deps.db.transaction(async (tx) => {
        const result = await work(tx);
        const data = adminRecord(req, res, typeof status === 'number' ? status : status(result), beforeValue, result ?? null, context.request);
        await appendAuditEvent(tx, deps.events, { type: AUDIT_EVENT_TYPES.admin, data, traceparent: context.traceparent });
        return result;
      });
      pending.recorded = true;
      deps.onEventsCommitted?.();
      return answer;
    },
  };
}

/**
 * Makes a successful answer wait for `record` (given the JSON body the handler sent, if any): the response ends only
 * once the record is written. Answers of 400 and above end at once (a refused request changed nothing), and so do
 * those of a change `change` already recorded in its transaction.
 */
function holdAnswerForRecord(res: Response, pending: PendingChange, record: (answer: unknown) => Promise<void>): void {
  let answer: unknown = null;
  const json = res.json.bind(res);
  res.json = (body: unknown) => {
    answer = body;
    return json(body);
  };
  const end = res.end.bind(res) as (...args: unknown[]) => Response;
  let ending = false;
  res.end = ((...args: unknown[]) => {
    if (ending || res.statusCode >= 400 || pending.recorded) return end(...args);
    ending = true;
    void record(answer).finally(() => end(...args));
    return res;
  }) as Response['end'];
}

/** The record of an admin change: its route (as declared), target, status, and the values before and after, redacted. */
function adminRecord(req: Request, res: Response, status: number, before: unknown, answer: unknown, request: EventRequest | null): AuditDataOf<typeof AUDIT_EVENT_TYPES.admin> {
  const route = (req.route as { path?: string } | undefined)?.path ?? req.path;
  const body = req.body && Object.keys(req.body as object).length > 0 ? (req.body as unknown) : null;
  return {
    actor: identityOfSubject(String(res.locals.admin ?? '')),
    action: `${req.method} ${req.baseUrl}${route}`,
    target: req.originalUrl.replace(/^\/admin\/v1\/?/, ''),
    status,
    before: redactSecrets(before),
    after: redactSecrets({ request: body, response: answer }),
    request,
  };
}
