/**
 * @jest-environment jsdom
 */
import { fireEvent, render, screen } from '@testing-library/preact';
import { CopyButton } from './copy-button';

describe('the copy button', () => {
  it('copies its text and says so in a status', async () => {
    const writeText = jest.fn(async () => undefined);
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    render(<CopyButton text="docker pull x" label="Copy the docker pull command" />);
    fireEvent.click(screen.getByRole('button', { name: 'Copy the docker pull command' }));
    expect(await screen.findByText('Copied')).toBeTruthy();
    expect(writeText).toHaveBeenCalledWith('docker pull x');
  });

  it('asks to copy by hand when the clipboard refuses', async () => {
    Object.defineProperty(navigator, 'clipboard', { value: { writeText: async () => Promise.reject(new Error('denied')) }, configurable: true });
    render(<CopyButton text="x" label="Copy" />);
    fireEvent.click(screen.getByRole('button', { name: 'Copy' }));
    expect(await screen.findByText(/select the text and copy it/)).toBeTruthy();
  });
});
