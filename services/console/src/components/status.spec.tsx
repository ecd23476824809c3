/**
 * @jest-environment jsdom
 */
import { render, screen } from '@testing-library/preact';
import { ApiError } from '../api';
import { ErrorMessage } from './status';

describe('error messages', () => {
  it("announce the server's message, and link to signing in when it wants credentials", () => {
    history.replaceState(null, '', '/ui/repositories/team/app');
    render(<ErrorMessage error={new ApiError(401, [{ code: 'UNAUTHORIZED', message: 'authentication required' }])} />);
    expect(screen.getByRole('alert').textContent).toContain('authentication required');
    expect(screen.getByRole('link', { name: 'Sign in' }).getAttribute('href')).toBe('/ui/sign-in?next=%2Fui%2Frepositories%2Fteam%2Fapp');
  });

  it('offer no sign-in for other errors', () => {
    render(<ErrorMessage error={new ApiError(404, [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }])} />);
    expect(screen.queryByRole('link')).toBeNull();
  });
});
