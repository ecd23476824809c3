import { isUnavailable, markUnavailable } from './unavailable';

describe('the unavailable marker', () => {
  it('marks an error without changing what it says', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(isUnavailable(err)).toBe(false);
    expect(markUnavailable(err)).toBe(err);
    expect(isUnavailable(err)).toBe(true);
    expect({ message: err.message, code: err.code, keys: Object.keys(err) }).toEqual({ message: 'connect ECONNREFUSED', code: 'ECONNREFUSED', keys: ['code'] });
    expect(JSON.stringify(err)).toBe('{"code":"ECONNREFUSED"}');
  });

  it('is false for anything unmarked, values that are not objects included', () => {
    for (const value of [undefined, null, 'EDBUNAVAILABLE', 503, new Error('x'), { unavailable: true }]) expect(isUnavailable(value)).toBe(false);
  });
});
