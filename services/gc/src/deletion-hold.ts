/**
 * A hold on object deletions: while any hold is taken, the collector deletes no blob object (it still reviews and
 * deletes metadata; the objects' tombstones wait and are retried once the last hold is let go). A backup takes one
 * before it snapshots the metadata and lets it go when it has copied every object the snapshot names: an object the
 * snapshot saw can then only go after the copy, whatever the collector decides meanwhile.
 *
 * Why it is enough: the collector deletes an object only from its tombstone, in a transaction that checks the hold
 * after claiming it (object-deletion.ts). A deletion that checked before the hold was taken belongs to a blob row
 * that was deleted before that, so before the snapshot (which starts after the hold): the snapshot does not name it.
 */

/** Counted holds on the collector's object deletions. */
export interface ObjectDeletionHold {
  /** Takes a hold and returns its release (calling it again does nothing). */
  take(): () => void;
  /** True while any hold is taken. */
  readonly held: boolean;
}

/** Creates an object-deletion hold with no hold taken. */
export function createObjectDeletionHold(): ObjectDeletionHold {
  let holds = 0;
  return {
    take() {
      holds++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        holds--;
      };
    },
    get held() {
      return holds > 0;
    },
  };
}
