/** Reading a V8 CPU profile (.cpuprofile), shared by the tools that summarise one. */
import { readFileSync } from 'node:fs';

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface Profile {
  nodes: ProfileNode[];
  /** The node sampled, one per sample. */
  samples: number[];
  /** Microseconds from the sample before to each sample. */
  timeDeltas: number[];
}

/** A file's URL as the tools print it: relative to the project, packages as `~/name`. */
export const shortUrl = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '~/').replace(/^.*\/main\//, '');

/** A frame of the project's own code (src/ or bench/), by its printed name. */
export const isProjectFrame = (name: string) => / (src|bench)\//.test(name);

export function readCpuProfile(path: string) {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const node = (id: number) => byId.get(id)!;
  /** `function file:line`, the name a frame is printed and grouped by. */
  const frameName = (id: number) => {
    const { functionName, url, lineNumber } = node(id).callFrame;
    return `${functionName || '(anonymous)'} ${url ? `${shortUrl(url)}:${lineNumber + 1}` : ''}`.trim();
  };
  /** The frame and its callers, innermost first. */
  function* stack(id: number): Generator<number> {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) yield at;
  }
  return { profile, node, frameName, stack };
}
