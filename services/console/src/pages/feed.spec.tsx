/**
 * @jest-environment jsdom
 */
import { act, fireEvent, render, screen, within } from '@testing-library/preact';
import { FEED_URL, FeedPage } from './feed';

/** An EventSource that a spec drives: open it, send named events. */
class FakeEventSource extends EventTarget {
  static last: FakeEventSource | null = null;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  constructor(readonly url: string) {
    super();
    FakeEventSource.last = this;
  }
  close() {
    this.closed = true;
  }
  emit(type: string, data: unknown) {
    act(() => {
      this.dispatchEvent(new MessageEvent(type, { data: JSON.stringify(data) }));
    });
  }
}

const pushed = (n: number) => ({
  id: `id-${n}`,
  type: 'io.lading.manifest.pushed',
  time: '2026-12-07T15:00:00.000Z',
  data: { repository: 'team/app', tag: `v${n}`, digest: `sha256:${String(n).repeat(64)}`, actor: { name: 'ci', type: 'robot' } },
});

describe('the live feed', () => {
  it('shows the events of the stream newest first, linked to the image, and closes the stream when left', () => {
    const page = render(<FeedPage connect={(url) => new FakeEventSource(url) as unknown as EventSource} />);
    const source = FakeEventSource.last as FakeEventSource;
    expect(source.url).toBe(FEED_URL);
    act(() => source.onopen?.());
    expect(screen.getByText(/Connected/)).toBeTruthy();
    source.emit('io.lading.manifest.pushed', pushed(1));
    source.emit('io.lading.tag.deleted', { ...pushed(2), type: 'io.lading.tag.deleted' });
    const items = within(screen.getByRole('log')).getAllByRole('listitem');
    expect(items.map((i) => i.textContent)).toEqual([expect.stringMatching(/^tag deleted team\/app:v2 .* by robot\$ci$/), expect.stringMatching(/^manifest pushed team\/app:v1/)]);
    expect(within(items[1]).getByRole('link').getAttribute('href')).toContain('/ui/repositories/team/app/-/manifests/sha256');
    page.unmount();
    expect(source.closed).toBe(true);
  });

  it("names a CI job's workload identity as one, not as a user called wi$…", () => {
    render(<FeedPage connect={(url) => new FakeEventSource(url) as unknown as EventSource} />);
    const source = FakeEventSource.last as FakeEventSource;
    source.emit('io.lading.manifest.pushed', { ...pushed(1), data: { ...pushed(1).data, actor: { name: 'wi$deploy-main', type: 'user' } } });
    const item = within(screen.getByRole('log')).getByRole('listitem');
    expect(item.textContent).toMatch(/by wi\$deploy-main workload identity$/);
  });

  it('holds events while paused and shows them on resume', () => {
    render(<FeedPage connect={(url) => new FakeEventSource(url) as unknown as EventSource} />);
    const source = FakeEventSource.last as FakeEventSource;
    fireEvent.click(screen.getByRole('button', { name: 'Pause' }));
    source.emit('io.lading.manifest.pushed', pushed(1));
    expect(within(screen.getByRole('log')).queryAllByRole('listitem')).toHaveLength(0);
    fireEvent.click(screen.getByRole('button', { name: 'Resume (1 waiting)' }));
    expect(within(screen.getByRole('log')).getAllByRole('listitem')).toHaveLength(1);
  });

  it('says when the connection is lost', () => {
    render(<FeedPage connect={(url) => new FakeEventSource(url) as unknown as EventSource} />);
    act(() => FakeEventSource.last?.onerror?.());
    expect(screen.getByText(/reconnecting/)).toBeTruthy();
  });
});
