/**
 * Parsing of `strace -f -o FILE` traces: the ground truth of the analyser tests
 * (test/helpers/ground-truth.ts) and of the corpus benchmark (bench/corpus/trace.ts).
 */

/**
 * x86_64 syscalls newer than strace 6.1's table (bookworm's strace prints them as
 * `syscall_0x1c3`); from the kernel's arch/x86/entry/syscalls/syscall_64.tbl.
 */
export const NEWER_SYSCALLS: Record<number, string> = {
  451: 'cachestat',
  452: 'fchmodat2',
  453: 'map_shadow_stack',
  454: 'futex_wake',
  455: 'futex_wait',
  456: 'futex_requeue',
  457: 'statmount',
  458: 'listmount',
  459: 'lsm_get_self_attr',
  460: 'lsm_set_self_attr',
  461: 'lsm_list_modules',
  462: 'mseal',
  463: 'setxattrat',
  464: 'getxattrat',
  465: 'listxattrat',
  466: 'removexattrat',
  467: 'open_tree_attr',
  468: 'file_getattr',
  469: 'file_setattr',
};

function kernelName(name: string): string {
  const numbered = /^syscall_0x([0-9a-f]+)$/.exec(name);
  if (numbered?.[1] === undefined) return name;
  return NEWER_SYSCALLS[Number.parseInt(numbered[1], 16)] ?? name;
}

// One trace line (strace -f -o FILE): "PID " then one of
//   name(args...) = ret            a complete call
//   name(args... <unfinished ...>  the first half of an interrupted call
//   <... name resumed>...) = ret   its second half (not counted again)
//   --- SIGCHLD {...} ---           a signal delivery
//   +++ exited with 0 +++           an exit (hidden by -qq, handled anyway)
const LINE = /^(\d+)\s+(.*)$/;
const CALL = /^([A-Za-z_][A-Za-z0-9_]*)\(/;
const RESUMED = /^<\.\.\. ([A-Za-z_][A-Za-z0-9_]*) resumed>/;
const RETURN_VALUE = /\)\s+=\s+(-?\d+|0x[0-9a-f]+|\?)(?:\s|$)/;
const CREATES_TASK = new Set(['clone', 'clone3', 'fork', 'vfork']);

export interface ParsedTrace {
  /** Every syscall name seen, in every process and thread, minus the initial execve. */
  syscalls: Set<string>;
  /** Syscalls of the root image's tasks up to (and including) any execve they make. */
  ownSyscalls: Set<string>;
  /** Syscalls per executable image (execve path; the root is `rootImage`). */
  byImage: Map<string, Set<string>>;
  /** The first line of the trace when it is the execve that started the program (not in the sets above). */
  initialExecve: string | undefined;
  /** Calls per syscall name, the initial execve included (a call interrupted and resumed counts once). */
  counts: Map<string, number>;
  /** Distinct pids (processes and threads) seen. */
  tasks: number;
  /** Successful execve/execveat paths, in order, the initial one included (`?` when not printed). */
  execs: string[];
  /** Trace lines that matched no known shape (expected empty). */
  unparsed: string[];
}

interface Event {
  pid: number;
  line: string;
  /** Syscall name for a call's first half; undefined for other lines. */
  name?: string;
  /** Name and return value when the call's result is known (complete or resumed line). */
  finished?: { name: string; ret: string | undefined };
  /** For execve: the path argument (from the first half). */
  execPath?: string;
}

/** Parses the text of an `strace -f -o` trace; `rootImage` names the traced program's own image. */
export function parseStrace(text: string, rootImage = '<root>'): ParsedTrace {
  const unparsed: string[] = [];
  const pids = new Set<number>();
  const counts = new Map<string, number>();
  const events: Event[] = [];
  // Pending first halves per pid, to give a resumed execve its path.
  const pendingExecPath = new Map<number, string>();

  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '') continue;
    const match = LINE.exec(line);
    if (match === null) {
      unparsed.push(line);
      continue;
    }
    const pid = Number(match[1]);
    const rest = match[2] ?? '';
    pids.add(pid);
    if (rest.startsWith('---') || rest.startsWith('+++')) continue;
    const resumed = RESUMED.exec(rest);
    if (resumed !== null) {
      const name = kernelName(resumed[1] ?? '');
      if (!counts.has(name)) counts.set(name, 1); // its first half was lost: still one call
      const ret = RETURN_VALUE.exec(rest)?.[1];
      const event: Event = { pid, line, finished: { name, ret } };
      if (name === 'execve' || name === 'execveat') {
        const p = pendingExecPath.get(pid);
        if (p !== undefined) event.execPath = p;
        pendingExecPath.delete(pid);
      }
      events.push(event);
      continue;
    }
    const call = CALL.exec(rest);
    if (call === null) {
      unparsed.push(line);
      continue;
    }
    const name = kernelName(call[1] ?? '');
    counts.set(name, (counts.get(name) ?? 0) + 1);
    const event: Event = { pid, line, name };
    if (name === 'execve' || name === 'execveat') {
      const p = execPathOf(name, rest);
      if (p !== undefined) event.execPath = p;
    }
    if (rest.endsWith('<unfinished ...>')) {
      if (event.execPath !== undefined) pendingExecPath.set(pid, event.execPath);
    } else {
      event.finished = { name, ret: RETURN_VALUE.exec(rest)?.[1] };
    }
    events.push(event);
  }

  // Which task created which (clone & co. return the new task's id). A child
  // often shows up in the trace before its parent's clone returns, so this
  // is collected before attributing anything.
  const parentOf = new Map<number, number>();
  for (const event of events) {
    const done = event.finished;
    if (done && CREATES_TASK.has(done.name) && done.ret !== undefined && /^\d+$/.test(done.ret)) {
      const child = Number(done.ret);
      if (child > 0 && !parentOf.has(child)) parentOf.set(child, event.pid);
    }
  }

  const syscalls = new Set<string>();
  const byImage = new Map<string, Set<string>>();
  const imageOf = new Map<number, string>();
  const rootPid = events[0]?.pid;
  let initialExecve: string | undefined;
  let skippedInitial = false;

  const currentImage = (pid: number): string => {
    const known = imageOf.get(pid);
    if (known !== undefined) return known;
    imageOf.set(pid, rootImage); // provisional: breaks cycles from pid reuse
    const parent = parentOf.get(pid);
    const image = parent !== undefined && parent !== pid ? currentImage(parent) : rootImage;
    imageOf.set(pid, image);
    return image;
  };

  const execs: string[] = [];
  let initialExecPending = false; // the initial execve was seen unfinished
  for (const event of events) {
    const image = currentImage(event.pid);
    let isInitial = false;
    if (event.name !== undefined) {
      isInitial = !skippedInitial && event === events[0] && event.name === 'execve';
      if (isInitial) {
        skippedInitial = true;
        initialExecve = event.line;
        initialExecPending = event.finished === undefined;
      } else {
        syscalls.add(event.name);
        let set = byImage.get(image);
        if (set === undefined) byImage.set(image, (set = new Set()));
        set.add(event.name);
      }
    } else if (initialExecPending && event.pid === rootPid && event.finished?.name === 'execve') {
      isInitial = true;
      initialExecPending = false;
    }
    // A later successful execve switches its task to the new image (the
    // initial one is where rootImage starts).
    const done = event.finished;
    if (done && (done.name === 'execve' || done.name === 'execveat') && done.ret === '0') {
      execs.push(event.execPath ?? '?');
      if (!isInitial) imageOf.set(event.pid, event.execPath ?? '<unknown execve>');
    }
  }
  return { syscalls, ownSyscalls: byImage.get(rootImage) ?? new Set(), byImage, initialExecve, counts, tasks: pids.size, execs, unparsed };
}

/** The path argument of an execve / execveat line (strace prints it as a C string). */
function execPathOf(name: string, rest: string): string | undefined {
  const args = rest.slice(name.length + 1);
  const quoted = name === 'execve' ? /^"((?:[^"\\]|\\.)*)"/.exec(args) : /^[^,]*,\s*"((?:[^"\\]|\\.)*)"/.exec(args);
  const body = quoted?.[1];
  if (body === undefined) return undefined;
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_m, esc: string) => {
    if (esc.startsWith('x')) return String.fromCharCode(parseInt(esc.slice(1), 16));
    if (/^[0-7]+$/.test(esc)) return String.fromCharCode(parseInt(esc, 8));
    return ({ n: '\n', t: '\t', r: '\r', v: '\v', f: '\f' } as Record<string, string>)[esc] ?? esc;
  });
}

