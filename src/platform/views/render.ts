import type { VNode } from 'preact';
import { renderToString } from 'preact-render-to-string';

/** Renders a full HTML document. Text is escaped by the renderer. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any props
export function renderDocument(vnode: VNode<any>): string {
  return `<!doctype html>${renderToString(vnode)}`;
}
