/**
 * Command tables of multi-call programs: an array of records, each pairing a command's name (a
 * pointer to a read-only string) with the function that runs it, which `main` searches for its
 * first argument (openssl's `functions[]` {type, name, func, …}, git's `commands[]` {cmd, fn,
 * option}, iproute2's `cmds[]`). The command that runs is the one invoked, as for BusyBox's applets:
 * each record becomes a root of its own (`command:<name>` exports, store/facts.ts), and the linker
 * roots only the invoked one when the first argument is known and names a record
 * (coordinator/plan/link.ts), every one otherwise.
 *
 * Found from relocations alone (x86-64 PIE programs, whose every pointer in data is one): a run of
 * at least MIN_COMMANDS records at a constant stride, each with a name slot holding a command word
 * and, at the same offset from it, a slot holding a code pointer. Records whose name is not a command
 * word end the run; their pointers stay ordinary function pointers in data.
 *
 * Only the longest such run of the program counts, and only when it lists a `help` command, as the
 * subcommand dispatchers of command-line tools do (openssl, git, ip, systemctl, toybox). Other
 * tables of named functions are chosen by what the program reads, not by its first argument
 * (make's functions by the makefile, a server's protocol commands by its clients, an
 * interpreter's builtin modules by the script): they stay function pointers in data.
 */

/** A command word: what a user types as the first argument (`s_client`, `rev-parse`, `x509`). */
const COMMAND_WORD = /^[a-z0-9][a-z0-9_.+-]{0,63}$/;
/** A shorter run is not a command table. */
const MIN_COMMANDS = 8;
/** The command a subcommand dispatcher lists for itself. */
const HELP = 'help';
/** Records span at most this many words. */
const MAX_RECORD_WORDS = 16;

export interface CommandTable {
  /** Slots holding the commands' functions: not function pointers in data. */
  readonly functionSlots: ReadonlySet<number>;
  /** One per record, in table order (a name may repeat: every record of it runs). */
  readonly commands: readonly { readonly name: string; readonly address: number }[];
  /**
   * The other data a record points at (openssl's `help` options), as [function, data address]:
   * the command's, held once it runs, not by the table. `dataSlots` holds the slots they were in.
   */
  readonly recordData: readonly (readonly [number, number])[];
  readonly dataSlots: ReadonlySet<number>;
}

/**
 * `codeSlots`: [slot, code address] of pointers in data; `stringSlots`: [slot, text] of pointers to
 * read-only strings; `dataSlots`: [slot, data address] of the other pointers in data; `word`: the
 * pointer size. A record spans `stride` bytes from its name or its function, whichever is first.
 *
 * The table is the longest chain of name slots at a constant stride whose records have functions.
 * Its function slot is at the offset from the name that most records have a code pointer at, the
 * nearest to the name on a tie (offsets to a neighbouring record's function match as often); a
 * record with none there (a NULL function, a command handled elsewhere) is no command.
 */
export function findCommandTable(
  codeSlots: readonly (readonly [number, number])[],
  stringSlots: readonly (readonly [number, string])[],
  dataSlots: readonly (readonly [number, number])[],
  word: number,
): CommandTable {
  const codeAt = new Map(codeSlots);
  const dataAt = new Map(dataSlots);
  const nameAt = new Map(stringSlots.filter(([, text]) => COMMAND_WORD.test(text)));
  const slots = [...nameAt.keys()].sort((a, b) => a - b);
  const chains: { stride: number; names: number[] }[] = [];
  for (let stride = 2 * word; stride <= MAX_RECORD_WORDS * word; stride += word) {
    for (const first of slots) {
      if (nameAt.has(first - stride)) continue;
      const names: number[] = [];
      for (let slot = first; nameAt.has(slot); slot += stride) names.push(slot);
      if (names.length >= MIN_COMMANDS) chains.push({ stride, names });
    }
  }
  chains.sort((a, b) => b.names.length - a.names.length || a.stride - b.stride || a.names[0]! - b.names[0]!);
  for (const { stride, names } of chains) {
    let best = { offset: 0, count: 0 };
    for (let distance = word; distance < stride; distance += word) {
      for (const offset of [distance, -distance]) {
        const count = names.filter((slot) => codeAt.has(slot + offset)).length;
        if (count > best.count) best = { offset, count };
      }
    }
    // Most records must have their function there: otherwise this is a list of names, not commands.
    if (best.count < MIN_COMMANDS || 2 * best.count < names.length) continue;
    // One table: the program's own dispatch, the longest. A shorter chain (a subcommand's table,
    // `git remote add`) is dispatched by a later argument, so its records stay function pointers in
    // data; and a longest table without a help command is no dispatcher's.
    if (!names.some((slot) => nameAt.get(slot) === HELP)) break;
    const functionSlots = new Set<number>();
    const commands: { name: string; address: number }[] = [];
    const recordData: [number, number][] = [];
    const recordDataSlots = new Set<number>();
    for (const slot of names) {
      const target = codeAt.get(slot + best.offset);
      if (target === undefined) continue;
      functionSlots.add(slot + best.offset);
      commands.push({ name: nameAt.get(slot)!, address: target });
      const start = slot + Math.min(0, best.offset);
      for (let field = start; field < start + stride; field += word) {
        const data = field === slot ? undefined : dataAt.get(field);
        if (data === undefined) continue;
        recordData.push([target, data]);
        recordDataSlots.add(field);
      }
    }
    return { functionSlots, commands, recordData, dataSlots: recordDataSlots };
  }
  return { functionSlots: new Set(), commands: [], recordData: [], dataSlots: new Set() };
}
