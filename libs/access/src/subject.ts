/** Token subjects: what a token's `sub` says about who holds it. */

/** The subject prefix of robot accounts (`robot$<name>`), as robots log in; user names cannot contain `$`. */
export const ROBOT_SUBJECT_PREFIX = 'robot$';

/** Who a token subject is: a user, a robot (by the robot's own name, without the prefix), or nobody (''). */
export interface SubjectIdentity {
  type: 'user' | 'robot' | 'anonymous';
  name: string | null;
}

/** Reads a token subject: `robot$<name>` is the robot `<name>`, '' is anonymous, anything else is a user's name. */
export function identityOfSubject(sub: string): SubjectIdentity {
  if (sub === '') return { type: 'anonymous', name: null };
  if (sub.startsWith(ROBOT_SUBJECT_PREFIX)) return { type: 'robot', name: sub.slice(ROBOT_SUBJECT_PREFIX.length) };
  return { type: 'user', name: sub };
}

/** The token subject of an identity (the inverse of `identityOfSubject`), for passing a verified caller on. */
export function subjectOfIdentity(identity: SubjectIdentity): string {
  if (identity.type === 'anonymous' || identity.name === null) return '';
  return identity.type === 'robot' ? `${ROBOT_SUBJECT_PREFIX}${identity.name}` : identity.name;
}
