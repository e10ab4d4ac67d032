/** A wrong command line: the CLI prints the message, points to the command's --help and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
