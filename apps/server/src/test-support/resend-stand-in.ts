import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface SentMail {
  from: string;
  to: string | string[];
  subject: string;
  text?: string;
  authorization: string | undefined;
}

/** A local server speaking Resend's `POST /emails` wire format, so the real `resend` client is exercised. */
export async function startResendStandIn() {
  const sent: SentMail[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/emails") {
        res
          .writeHead(404, { "content-type": "application/json" })
          .end(JSON.stringify({ name: "not_found", message: "no route" }));
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Omit<SentMail, "authorization">;
      sent.push({ ...body, authorization: req.headers.authorization });
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ id: `email_${sent.length}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sent,
    /** The first link in the newest mail to `to`. */
    lastLink(to: string): string {
      const mail = [...sent].reverse().find((m) => [m.to].flat().includes(to));
      const link = mail?.text?.match(/https?:\/\/\S+/)?.[0];
      if (!link) throw new Error(`no mail with a link to ${to}`);
      return link;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
