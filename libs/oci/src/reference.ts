/** The repository-name and tag grammar of the OCI Distribution Spec. */
import { OciError } from './errors';

/** The longest repository name the registry accepts. */
export const MAX_NAME_LENGTH = 255;

const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_GRAMMAR = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_GRAMMAR = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** True when a repository name matches the spec's grammar and length limit. */
export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_GRAMMAR.test(name);
}

/** Throws NAME_INVALID unless the repository name is valid. */
export function assertRepositoryName(name: string): void {
  if (!isValidRepositoryName(name)) {
    throw new OciError('NAME_INVALID', 'invalid repository name', { name: name.slice(0, 300) });
  }
}

/** True when a tag matches the spec's grammar. */
export function isValidTag(tag: string): boolean {
  return TAG_GRAMMAR.test(tag);
}

/** The namespace of a repository: everything before its last path component ('' for a top-level name). */
export function namespaceOf(repository: string): string {
  const slash = repository.lastIndexOf('/');
  return slash < 0 ? '' : repository.slice(0, slash);
}
