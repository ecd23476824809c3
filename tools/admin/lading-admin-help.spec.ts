/** Every command and subcommand of the admin CLI answers --help, run as a real process. */
import { cli, cliAll } from './lading-admin-testing';

describe('lading-admin --help', () => {
  it('answers --help on every command and subcommand, with exit status 0', async () => {
    const commands: Record<string, string[]> = {
      users: ['list', 'create', 'passwd', 'disable', 'enable', 'delete'],
      robots: ['list', 'create', 'revoke'],
      tokens: ['list', 'create', 'revoke'],
      namespaces: ['list', 'create', 'delete'],
      grants: ['list', 'add', 'remove'],
      keys: ['rotate'],
      proxies: ['list', 'set', 'remove'],
    };
    const runs: string[][] = [['--help'], ['-h'], ['help'], ['help', 'users', 'create']];
    for (const [command, subs] of Object.entries(commands)) {
      runs.push([command, '--help']);
      for (const sub of subs) runs.push([command, sub, '--help']);
    }
    const results = await cliAll(runs.map((args) => ({ args })));
    for (const [i, result] of results.entries()) {
      const args = runs[i];
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
      expect(result.stdout).toMatch(/^usage: lading-admin /);
      const words = args.filter((a) => !a.startsWith('-') && a !== 'help');
      if (words.length === 2) expect(result.stdout.split('\n')[0]).toContain(`lading-admin ${words[0]} ${words[1]}`);
      if (words.length === 1) expect(result.stdout).toContain(`lading-admin ${words[0]} <subcommand>`);
    }
    const top = results[0].stdout;
    for (const command of Object.keys(commands)) expect(top).toContain(`  ${command} `);
    // Commands without subcommands (backup, restore) answer with their own usage.
    const actions = { backup: 'backup --out FILE', restore: 'restore --from FILE' };
    for (const [command, usage] of Object.entries(actions)) {
      expect(top).toContain(`  ${command} `);
      const own = await cli([command, '--help']);
      expect({ command, code: own.code, stderr: own.stderr }).toEqual({ command, code: 0, stderr: '' });
      expect(own.stdout.split('\n')[0]).toContain(`usage: lading-admin ${usage}`);
    }
    const missing = await cli(['backup']);
    expect({ code: missing.code, stderr: missing.stderr }).toEqual({ code: 2, stderr: 'lading-admin: backup needs --out FILE\n' });
    // The bash wrapper runs the same CLI from any directory.
    const wrapped = await cli(['keys', 'rotate', '--help'], { wrapper: true });
    expect(wrapped.code).toBe(0);
    expect(wrapped.stdout).toMatch(/^usage: lading-admin keys rotate/);
  });
});
