// Server-Sent Events over fetch: EventSource cannot send an Authorization header, so the
// stream is read from a fetch Response body and split into frames here.

/** Parse one frame's lines ("event: x", "data: {...}") into {event, data, raw}. */
export function parseFrame(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // comment or keep-alive
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length && event === "message") return null;
  const raw = data.join("\n");
  let parsed = raw;
  try {
    parsed = raw ? JSON.parse(raw) : null;
  } catch {
    parsed = raw;
  }
  return { event, data: parsed, raw };
}

/** Yield every frame of an SSE response as it arrives. */
export async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let carry = ""; // a trailing "\r" whose "\n" may come with the next chunk
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let text = carry + decoder.decode(value, { stream: true });
      carry = text.endsWith("\r") ? "\r" : "";
      if (carry) text = text.slice(0, -1);
      buffer += text.replace(/\r\n?/g, "\n");
      let end = buffer.indexOf("\n\n");
      while (end !== -1) {
        const frame = parseFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (frame) yield frame;
        end = buffer.indexOf("\n\n");
      }
    }
    buffer += (carry + decoder.decode()).replace(/\r\n?/g, "\n");
    const last = parseFrame(buffer.trim());
    if (last) yield last;
  } finally {
    reader.releaseLock();
  }
}
