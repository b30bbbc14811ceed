// Minimal typings for mvdan-sh (the GopherJS build of mvdan/sh's parser), covering what
// coordinator/plan/shell-eval.ts uses. Nodes are Go structs; `syntax.NodeType(node)` names their type.
declare module 'mvdan-sh' {
  export interface ShNode {
    readonly [field: string]: unknown;
  }
  export interface ShParser {
    Parse(source: string, name: string): ShNode;
  }
  export const syntax: {
    NewParser(...options: unknown[]): ShParser;
    Walk(node: ShNode, visit: (node: ShNode | null) => boolean): void;
    NodeType(node: ShNode): string;
    Variant(language: number): unknown;
    LangBash: number;
    LangPOSIX: number;
  };
  const sh: { syntax: typeof syntax };
  export default sh;
}
