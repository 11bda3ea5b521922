// Entry point of the one binary. Each mode is imported only when it runs, so the sidecar
// (one copy in every injected pod) never loads express, the Kubernetes client, node-forge or yaml,
// and only the webhook and the proxy load the Kubernetes client.

import { usageError } from './usage.ts';
import { VERSION } from './version.ts';

interface Mode {
  summary: string;
  load: () => Promise<{ main: (argv: string[]) => Promise<number> }>;
}

const modes: Record<string, Mode> = {
  webhook: {
    summary: 'HTTPS admission webhook (POST /mutate, /healthz, /readyz, /metrics)',
    load: () => import('./webhook/main.ts'),
  },
  sidecar: {
    summary: 'the multiplexer: scrape every container, label and merge, serve one endpoint',
    load: () => import('./sidecar/main.ts'),
  },
  proxy: {
    summary: 'one endpoint for the pods a label selector finds: scrape them all, label and merge',
    load: () => import('./proxy/main.ts'),
  },
  inject: {
    summary: 'dry run: print manifests (or JSON patches) as the webhook would mutate them',
    load: async () => {
      const m = await import('./workloads/command.ts');
      return { main: (argv) => m.main('inject', argv) };
    },
  },
  uninject: {
    summary: "restore manifests from promux's status annotation",
    load: async () => {
      const m = await import('./workloads/command.ts');
      return { main: (argv) => m.main('uninject', argv) };
    },
  },
  demo: {
    summary: 'local walk-through of the whole path, with no cluster',
    load: () => import('./demo.ts'),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(modes).map((m) => m.length));
  const lines = Object.entries(modes).map(([name, m]) => `  ${name.padEnd(width)}  ${m.summary}`);
  return [
    'Usage: promux <command> [options]',
    '',
    'One correct Prometheus endpoint for every multi-container pod.',
    '',
    'Commands:',
    ...lines,
    '',
    "Run 'promux <command> --help' for a command's options.",
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage());
    return command === undefined ? 1 : 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`promux ${VERSION}\n`);
    return 0;
  }
  const mode = modes[command];
  if (mode === undefined) {
    process.stderr.write(usageError(undefined, `unknown command '${command}'`));
    return 2;
  }
  const { main: run } = await mode.load();
  return run(rest);
}
