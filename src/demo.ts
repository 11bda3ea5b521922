// Placeholder until this mode lands.
export async function main(_argv: string[]): Promise<number> {
  process.stderr.write("promux: this command is not built yet\n");
  return 1;
}
