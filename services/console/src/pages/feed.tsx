/**
 * The live feed: the registry's events as they happen (`GET /api/v1/events`, Server-Sent Events), newest first.
 * The server sends only events of repositories the session may pull. The list is a polite live region; it can be
 * paused, so that a screen reader or a reader is not interrupted while a burst of pushes arrives.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { PageHeading } from '../components/page-heading';
import { PrincipalName } from '../components/principal-name';
import { FEED_EVENT_TYPES, describeEventType } from '../event-types';
import { formatTime, shortDigest } from '../format';
import { principalOfActor } from '../principal';
import { href } from '../router';
import type { FeedEvent } from '../types';

/** The feed's URL (same origin: the session cookie goes with it). */
export const FEED_URL = '/api/v1/events';

/** How many events the page keeps. */
export const FEED_LIMIT = 200;

/** Opens the event stream; a test gives a fake. */
export type ConnectFeed = (url: string) => EventSource;

type Connection = 'connecting' | 'open' | 'reconnecting';

const openEventSource: ConnectFeed = (url) => new EventSource(url);

/** The live feed page. */
export function FeedPage({ connect = openEventSource }: { connect?: ConnectFeed }) {
  const [events, setEvents] = useState<FeedEvent[]>([]);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [paused, setPaused] = useState(false);
  const held = useRef<FeedEvent[]>([]);
  const [waiting, setWaiting] = useState(0);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  useEffect(() => {
    const source = connect(FEED_URL);
    const receive = (message: MessageEvent<string>) => {
      let event: FeedEvent;
      try {
        event = JSON.parse(message.data) as FeedEvent;
      } catch {
        return;
      }
      if (!event || typeof event !== 'object' || !event.data) return;
      if (pausedRef.current) {
        held.current.push(event);
        setWaiting(held.current.length);
      } else setEvents((list) => [event, ...list].slice(0, FEED_LIMIT));
    };
    for (const type of FEED_EVENT_TYPES) source.addEventListener(type, receive as EventListener);
    source.addEventListener('message', receive as EventListener);
    source.onopen = () => setConnection('open');
    // EventSource reconnects by itself (with Last-Event-ID); the page only says so.
    source.onerror = () => setConnection('reconnecting');
    return () => source.close();
  }, [connect]);
  const resume = () => {
    const arrived = held.current.reverse();
    held.current = [];
    setWaiting(0);
    setEvents((list) => [...arrived, ...list].slice(0, FEED_LIMIT));
    setPaused(false);
  };
  return (
    <>
      <PageHeading>Live feed</PageHeading>
      <p class="feed-status">
        <span class={`dot ${connection}`} aria-hidden="true" />
        {connection === 'open' ? 'Connected: new events appear at the top.' : connection === 'connecting' ? 'Connecting…' : 'Connection lost; reconnecting…'}{' '}
        {paused ? (
          <button type="button" class="secondary small" onClick={resume}>
            Resume ({waiting} waiting)
          </button>
        ) : (
          <button type="button" class="secondary small" onClick={() => setPaused(true)}>
            Pause
          </button>
        )}
      </p>
      {events.length === 0 ? <p class="meta">No events yet. Push an image to see it here.</p> : null}
      <ol class="feed" aria-label="Events, newest first" aria-live={paused ? 'off' : 'polite'} role="log">
        {events.map((e) => (
          <li key={e.id}>
            <span class="event-type">{describeEventType(e.type)}</span>{' '}
            <a href={e.data.digest ? href.image(e.data.repository, e.data.digest) : href.repository(e.data.repository)}>
              {e.data.repository}
              {e.data.tag ? `:${e.data.tag}` : e.data.digest ? `@${shortDigest(e.data.digest)}` : ''}
            </a>
            <span class="meta">
              {' '}
              {formatTime(e.time)}
              {principalOfActor(e.data.actor) ? (
                <>
                  {' by '}
                  <PrincipalName name={principalOfActor(e.data.actor)} />
                </>
              ) : null}
            </span>
          </li>
        ))}
      </ol>
    </>
  );
}
