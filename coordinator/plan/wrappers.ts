/**
 * Programs that run another program given on their command line (privilege droppers, init
 * shims, schedulers), as data: their options and how many operands precede the command. A
 * wrapper's command is followed like any invocation; what the wrapper itself does is analysed too.
 */
import type { ArgList } from './shell-eval.js';

interface WrapperSyntax {
  /** Options that take a value as the next word (`-u user`); `--opt=value` and `-uvalue` forms are understood. */
  readonly withValue?: readonly string[];
  /** Operands before the command (`gosu USER cmd`, `timeout DURATION cmd`, `chroot DIR cmd`). */
  readonly operands?: number;
  /** `NAME=value` words before the command are assignments (env). */
  readonly assignments?: boolean;
  /** Options after which there is no command (`taskset -p`, `env --help`). */
  readonly noCommand?: readonly string[];
  /** An option, anywhere on the line, whose value is a shell command line run with `sh -c` (`su user -c '...'`). */
  readonly shellCommand?: readonly string[];
  /** Without one of these options the wrapper runs no command of its own (`runuser user` is a login shell; `runuser -u user cmd` runs cmd). */
  readonly commandOnlyWith?: readonly string[];
  /** An option whose value is split into more arguments (`env -S 'cmd -x'`, as `#!/usr/bin/env -S` lines use it). */
  readonly splitString?: readonly string[];
  /** The first operand is the root the command runs in (`chroot DIR cmd`): programs are looked up there. */
  readonly rootOperand?: boolean;
}

const WRAPPERS: ReadonlyMap<string, WrapperSyntax> = new Map<string, WrapperSyntax>([
  ['env', { withValue: ['-u', '--unset', '-C', '--chdir'], splitString: ['-S', '--split-string'], assignments: true, noCommand: ['--help', '--version'] }],
  ['gosu', { operands: 1 }],
  ['su-exec', { operands: 1 }],
  ['s6-setuidgid', { operands: 1 }],
  ['setuidgid', { operands: 1 }],
  ['envdir', { operands: 1 }],
  ['s6-envdir', { operands: 1, withValue: ['-c'] }],
  ['chpst', { withValue: ['-u', '-U', '-b', '-e', '-/', '-C', '-n', '-l', '-L', '-m', '-d', '-o', '-p', '-f', '-c', '-r', '-t'] }],
  ['setpriv', {
    withValue: ['--reuid', '--regid', '--ruid', '--rgid', '--euid', '--egid', '--groups', '--inh-caps', '--ambient-caps', '--bounding-set', '--securebits', '--pdeathsig', '--selinux-label', '--apparmor-profile', '--landlock-access', '--landlock-rule', '--seccomp-filter'],
    noCommand: ['-d', '--dump', '--help', '--version'],
  }],
  ['runuser', { withValue: ['-u', '--user', '-g', '--group', '-G', '--supp-group', '-s', '--shell', '-w', '--whitelist-environment'], shellCommand: ['-c', '--command', '--session-command'], commandOnlyWith: ['-u', '--user'] }],
  ['su', { withValue: ['-g', '--group', '-G', '--supp-group', '-s', '--shell', '-w', '--whitelist-environment'], shellCommand: ['-c', '--command', '--session-command'], commandOnlyWith: [] }],
  ['sudo', { withValue: ['-u', '--user', '-g', '--group', '-C', '--close-from', '-D', '--chdir', '-h', '--host', '-p', '--prompt', '-r', '--role', '-t', '--type', '-U', '--other-user', '-T', '--command-timeout'], noCommand: ['-l', '--list', '-v', '--validate', '-k', '-K', '-V', '--version', '-h', '--help'] }],
  ['doas', { withValue: ['-u', '-C'] }],
  ['chroot', { withValue: ['--userspec', '--groups'], operands: 1, rootOperand: true }],
  ['tini', { withValue: ['-p', '-e'], noCommand: ['-h', '--version'] }],
  ['tini-static', { withValue: ['-p', '-e'], noCommand: ['-h', '--version'] }],
  ['catatonit', {}],
  ['dumb-init', { withValue: ['-r', '--rewrite'], noCommand: ['-h', '--help', '-V', '--version'] }],
  ['nice', { withValue: ['-n', '--adjustment'] }],
  ['ionice', { withValue: ['-c', '--class', '-n', '--classdata'], noCommand: ['-p', '--pid', '-P', '--pgid', '-u', '--uid'] }],
  ['nohup', {}],
  ['setsid', {}],
  ['timeout', { withValue: ['-s', '--signal', '-k', '--kill-after'], operands: 1 }],
  ['stdbuf', { withValue: ['-i', '--input', '-o', '--output', '-e', '--error'] }],
  ['numactl', { withValue: ['-i', '--interleave', '-p', '--preferred', '-m', '--membind', '-N', '--cpunodebind', '-C', '--physcpubind', '-w', '--weighted-interleave', '-b', '--balancing'], noCommand: ['-H', '--hardware', '-s', '--show'] }],
  ['taskset', { operands: 1, noCommand: ['-p', '--pid'] }],
  ['chrt', { operands: 1, noCommand: ['-p', '--pid', '-m', '--max'] }],
  ['xargs', { withValue: ['-a', '--arg-file', '-d', '--delimiter', '-E', '-e', '-I', '-i', '-L', '-l', '-n', '--max-args', '-P', '--max-procs', '-s', '--max-chars'] }],
]);

export type WrappedCommand =
  /** The command the wrapper runs (`more` when arguments after it are not known). */
  | { readonly argv: ArgList }
  /** A shell command line, run as `sh -c`. */
  | { readonly shell: string }
  /** Part of the wrapper's command line that decides what it runs is not known. */
  | { readonly unknown: string };

/**
 * What `name args...` runs, if `name` is a wrapper: undefined for other programs and for a wrapper
 * invoked without a command (`env` alone prints the environment).
 */
export function wrappedCommand(name: string, args: ArgList): WrappedCommand | undefined {
  const syntax = WRAPPERS.get(name);
  if (!syntax) return undefined;
  const withValue = new Set(syntax.withValue ?? []);
  const items = args.items;
  const shellOption = syntax.shellCommand ? shellCommandOf(name, syntax.shellCommand, args) : undefined;
  if (shellOption) return shellOption;
  if (syntax.commandOnlyWith && !items.some((item) => typeof item === 'string' && syntax.commandOnlyWith!.includes(item.split('=')[0]!))) {
    return args.more ? { unknown: `what ${name} runs is not known` } : undefined;
  }
  let operands = syntax.operands ?? 0;
  let i = 0;
  for (; i < items.length; i++) {
    const item = items[i];
    if (item === null || item === undefined) return { unknown: `an argument of ${name} is not known` };
    if (item === '--') {
      i++;
      break;
    }
    if (item.startsWith('-') && item !== '-') {
      const option = item.startsWith('--') ? item.split('=')[0]! : item.slice(0, 2);
      if ((syntax.noCommand ?? []).includes(option)) return undefined;
      const attached = item.startsWith('--') ? item.includes('=') : item.length > 2;
      if ((syntax.splitString ?? []).includes(option)) {
        const value = attached ? (item.startsWith('--') ? item.slice(item.indexOf('=') + 1) : item.slice(2)) : items[i + 1];
        // Quotes, escapes and ${} have env's own meaning there: only plain words are split here.
        if (typeof value !== 'string' || /['"\\$]/.test(value)) return { unknown: `the string ${name} ${option} splits is not known` };
        const rest = items.slice(i + (attached ? 1 : 2));
        return wrappedCommand(name, { items: [...value.split(/[ \t]+/).filter(Boolean), ...rest], more: args.more });
      }
      if (withValue.has(option) && !attached) i++;
      continue;
    }
    if (item === '-' && name === 'env') continue;
    if (syntax.assignments && /^[^=]+=/.test(item)) continue;
    if (operands > 0) {
      if (syntax.rootOperand && operands === (syntax.operands ?? 0) && item.replace(/\/+/g, '/') !== '/') {
        return { unknown: `${name} runs its command in another root (${item}), where its programs are not looked up` };
      }
      operands--;
      continue;
    }
    break;
  }
  if (i >= items.length) return args.more ? { unknown: `the command ${name} runs is not known` } : undefined;
  return { argv: { items: items.slice(i), more: args.more } };
}

/** `su user -c 'cmd'`, `runuser -c 'cmd' user`: the shell command line, wherever the option is. */
function shellCommandOf(name: string, options: readonly string[], args: ArgList): WrappedCommand | undefined {
  const items = args.items;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (typeof item !== 'string') continue;
    if (item === '--') break;
    const option = item.startsWith('--') ? item.split('=')[0]! : item.slice(0, 2);
    if (!options.includes(option)) continue;
    const attached = item.startsWith('--') ? item.includes('=') : item.length > 2;
    const value = attached ? (item.startsWith('--') ? item.slice(item.indexOf('=') + 1) : item.slice(2)) : items[i + 1];
    if (typeof value !== 'string') return { unknown: `the command of ${name} ${option} is not known` };
    return { shell: value };
  }
  return undefined;
}
