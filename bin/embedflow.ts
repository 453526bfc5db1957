// `embedflow --version` answers before the command tree (and everything it imports) is loaded.
const first = process.argv[2];
if (first === '--version' || first === '-V') {
  const { packageVersion } = await import('../cli/version.ts');
  process.stdout.write(`${packageVersion()}\n`);
} else {
  const { main } = await import('../cli/program.ts');
  process.exitCode = await main(process.argv);
}
