/**
 * A namespace's immutable-tag rules (docs/governance.md, "Immutable tags"): its patterns and their exceptions, each
 * removable, and a form to add one to either list. Every change is `PATCH /admin/v1/namespaces?prefix=` with the
 * whole new list, which the admin API validates as it does for lading-admin (tag characters, `*` and `?`, at most
 * 128 each, at most 64 per list): the console checks nothing itself, so a pattern the API refuses is refused with the
 * API's own words, and nothing changes. A namespace admin may change the rules of its namespaces (not whether they
 * are public), so the form is offered to it as to a global admin.
 */
import { useState } from 'preact/hooks';
import { ErrorMessage } from '../../components/status';
import { useSession } from '../../session';

/** The rules' two lists, as the admin API names them, with what the page calls them. */
export const TAG_RULE_LISTS = [
  ['immutableTags', 'Immutable tags', 'No tag is immutable.'],
  ['immutableTagExceptions', 'Exceptions', 'No exceptions.'],
] as const;

/** One of the two lists. */
export type TagRuleList = (typeof TAG_RULE_LISTS)[number][0];

/** What the editor shows and changes of a namespace (`GET /admin/v1/namespaces`). */
export interface TagRulesOf {
  prefix: string;
  immutableTags?: string[];
  immutableTagExceptions?: string[];
}

/** A namespace's immutable-tag rules; `onChanged` runs after a change the API accepted (to reload the namespaces). */
export function TagRules({ namespace, onChanged }: { namespace: TagRulesOf; onChanged: () => void }) {
  const { api } = useSession();
  const { prefix } = namespace;
  const [pattern, setPattern] = useState('');
  const [list, setList] = useState<TagRuleList>('immutableTags');
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = `tag-rules-${prefix.replace(/[^a-z0-9]/g, '-')}`;

  /** PATCHes one list; `what` names the change both ways: done ("Added …") and refused ("Adding … was refused"). */
  const save = async (key: TagRuleList, next: string[], what: { done: string; doing: string }): Promise<boolean> => {
    setError(null);
    setDone(null);
    setBusy(true);
    try {
      await api.request(`/admin/v1/namespaces?prefix=${encodeURIComponent(prefix)}`, { method: 'PATCH', json: { [key]: next } });
      setDone(`${what.done}.`);
      onChanged();
      return true;
    } catch (err) {
      setError(`${what.doing} was refused: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const label = (key: TagRuleList) => (key === 'immutableTags' ? 'immutable tags' : 'exceptions');

  return (
    <section class="tag-rules" aria-labelledby={`${id}-heading`}>
      <h4 id={`${id}-heading`}>
        Tag rules<span class="visually-hidden"> of {prefix}</span>
      </h4>
      <p class="meta" id={`${id}-hint`}>
        A tag matching an immutable pattern and no exception never moves to another digest and is never deleted. <code>*</code> matches any run of characters, <code>?</code>{' '}
        one.
      </p>
      {TAG_RULE_LISTS.map(([key, title, none]) => {
        const patterns = namespace[key] ?? [];
        return (
          <div key={key}>
            <h5 id={`${id}-${key}`}>{title}</h5>
            {patterns.length === 0 ? (
              <p class="meta">{none}</p>
            ) : (
              <ul class="patterns" aria-labelledby={`${id}-${key}`}>
                {patterns.map((p) => (
                  <li key={p}>
                    <code>{p}</code>{' '}
                    <button
                      type="button"
                      class="secondary small"
                      disabled={busy}
                      onClick={() =>
                        void save(
                          key,
                          patterns.filter((q) => q !== p),
                          { done: `Removed ${p} from the ${label(key)} of ${prefix}`, doing: `Removing ${p} from the ${label(key)} of ${prefix}` },
                        )
                      }
                    >
                      Remove<span class="visually-hidden"> {p} from the {label(key)} of {prefix}</span>
                    </button>
                  </li>
                ))}
              </ul>
            )}
          </div>
        );
      })}
      <form
        class="form inline-form"
        aria-label={`Add a tag rule to ${prefix}`}
        onSubmit={(e) => {
          e.preventDefault();
          const current = namespace[list] ?? [];
          const to = `${pattern} to the ${label(list)} of ${prefix}`;
          void save(list, [...current, pattern], { done: `Added ${to}`, doing: `Adding ${to}` }).then((saved) => saved && setPattern(''));
        }}
      >
        <div class="field">
          <label for={`${id}-pattern`}>
            Pattern<span class="visually-hidden"> for {prefix}</span>
          </label>
          <input id={`${id}-pattern`} required value={pattern} placeholder="v*, release-*" aria-describedby={`${id}-hint`} onInput={(e) => setPattern(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for={`${id}-list`}>
            Add to<span class="visually-hidden"> the rules of {prefix}</span>
          </label>
          <select id={`${id}-list`} value={list} onChange={(e) => setList(e.currentTarget.value as TagRuleList)}>
            {TAG_RULE_LISTS.map(([key, title]) => (
              <option key={key} value={key}>
                {title}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" disabled={busy}>
          Add pattern<span class="visually-hidden"> to {prefix}</span>
        </button>
      </form>
      <ErrorMessage error={error} />
      {done ? (
        <p class="meta" role="status">
          {done}
        </p>
      ) : null}
    </section>
  );
}
