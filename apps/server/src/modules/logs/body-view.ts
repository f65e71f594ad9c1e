import type { BodyView } from "@mitte/contract";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Text bodies are shown as text; anything that is not valid UTF-8 is shown as base64, never mangled. */
export function toBodyView(bytes: Buffer, truncated?: boolean): BodyView {
  let view: BodyView;
  try {
    view = { encoding: "utf8", data: utf8.decode(bytes), size: bytes.length };
  } catch {
    view = { encoding: "base64", data: bytes.toString("base64"), size: bytes.length };
  }
  if (truncated !== undefined) view.truncated = truncated;
  return view;
}
