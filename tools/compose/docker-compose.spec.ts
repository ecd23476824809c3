/**
 * docker-compose.yml is for users with Docker; no Docker engine runs here, so CI checks the file by parsing it:
 * every service has an image and a command, and every LADING_* variable it sets is accepted by the config schema.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { applyEnv, parseConfig } from '@lading/config';

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: unknown;
  environment?: Record<string, string> | string[];
}

const compose = parse(readFileSync(path.resolve(__dirname, '..', '..', 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, ComposeService>;
};

function environmentOf(service: ComposeService): Record<string, string> {
  if (!service.environment) return {};
  if (Array.isArray(service.environment)) {
    return Object.fromEntries(service.environment.map((line) => [line.split('=')[0], line.slice(line.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(service.environment).map(([k, v]) => [k, String(v)]));
}

describe('docker-compose.yml', () => {
  const services = Object.entries(compose.services ?? {});

  it('declares at least one service', () => {
    expect(services.length).toBeGreaterThan(0);
  });

  it.each(services)('service %s has an image (or build) and a command', (_name, service) => {
    expect(service.image ?? service.build).toBeTruthy();
    expect(service.command).toBeTruthy();
  });

  it.each(services)('service %s sets only LADING_* variables the config schema accepts', (_name, service) => {
    const env = Object.fromEntries(Object.entries(environmentOf(service)).filter(([k]) => k.startsWith('LADING_')));
    expect(() => parseConfig(applyEnv({}, env))).not.toThrow();
  });
});
