/** The commands that pull an image with docker, podman and crane from this registry, each with a copy button. */
import { pullCommands } from '../oci';
import { CopyButton } from './copy-button';

/** Pull commands for `name` at `reference`, using the host the page was loaded from. */
export function PullCommands({ name, reference, host = location.host }: { name: string; reference: string; host?: string }) {
  return (
    <ul class="commands">
      {pullCommands(host, name, reference).map(({ client, command }) => (
        <li key={client}>
          <span class="client">{client}</span>
          <code>{command}</code>
          <CopyButton text={command} label={`Copy the ${client} pull command`} />
        </li>
      ))}
    </ul>
  );
}
