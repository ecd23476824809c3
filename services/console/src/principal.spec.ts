import { principalOfActor, principalParts } from './principal';

describe('principals as the console lists them', () => {
  it('tells users, robots, workload identities and anonymous apart by their prefix', () => {
    expect(principalParts('alice')).toEqual({ kind: 'user', name: 'alice', principal: 'alice' });
    expect(principalParts('robot$ci')).toEqual({ kind: 'robot', name: 'ci', principal: 'robot$ci' });
    expect(principalParts('wi$deploy-main')).toEqual({ kind: 'workload', name: 'deploy-main', principal: 'wi$deploy-main' });
    expect(principalParts(null).kind).toBe('anonymous');
    expect(principalParts('').kind).toBe('anonymous');
  });

  it("names an event's actor as the audit log does: a robot with robot$, a workload's subject as it is", () => {
    expect(principalOfActor({ type: 'robot', name: 'ci' })).toBe('robot$ci');
    expect(principalOfActor({ type: 'user', name: 'wi$deploy' })).toBe('wi$deploy');
    expect(principalOfActor({ type: 'user', name: 'alice' })).toBe('alice');
    expect(principalOfActor({ type: 'anonymous', name: null })).toBeNull();
    expect(principalOfActor(null)).toBeNull();
  });
});
