import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { type ErrorCode, errorBody, errorStatus } from "../errors.js";

/**
 * Protection of the HTTP server against hostile or broken clients, below the routes:
 *
 * - `httpServerTimeouts`: a whole request (headers and body) must arrive within `requestTimeoutMs`, so a sender
 *   trickling one byte per second cannot hold a connection (and its buffered body) forever. Node checks
 *   deadlines every `connectionsCheckingInterval`; the default 30 s would double a 30 s timeout.
 * - `clientErrorHandler`: what Node's HTTP parser rejects before any route runs (request timeout, oversized
 *   headers, malformed framing such as Content-Length together with Transfer-Encoding) is answered with the
 *   same `{"error": {"code", "message"}}` body as every other error.
 * - `closeAfterAnswer`: an error answered before the whole request body arrived (413 while reading, a refusal
 *   in `onRequest`) closes the connection — the rest of the upload is never read — but lingers first.
 *   Closing a socket with unread input makes the kernel send a reset, and a reset arriving at a client that
 *   is still uploading discards the answer it has not read yet; so the server half-closes, stops reading (TCP
 *   flow control stalls the sender) and destroys the socket only after `LINGER_MS`.
 */

/** How long a connection closed after an early error answer stays open so the client can read the answer. */
export const LINGER_MS = 2_000;

export interface HttpServerTimeouts {
  requestTimeout: number;
  http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number };
}

/** Fastify options (and Node `http.createServer` options) enforcing `requestTimeoutMs` promptly. */
export function httpServerTimeouts(requestTimeoutMs: number): HttpServerTimeouts {
  const checkEveryMs = Math.min(5_000, Math.max(100, Math.floor(requestTimeoutMs / 10)));
  return {
    requestTimeout: requestTimeoutMs,
    http: {
      // Node requires headersTimeout <= requestTimeout; its own default is 60 s.
      headersTimeout: Math.min(60_000, requestTimeoutMs),
      requestTimeout: requestTimeoutMs,
      connectionsCheckingInterval: checkEveryMs,
    },
  };
}

/** The part of node:http's private socket state the handlers below need. */
type ServerSocket = Socket & { _httpMessage?: { headersSent?: boolean } | null };

const lingering = new WeakSet<Socket>();

/**
 * Half-closes `socket` after what was written so far, reads nothing more, and destroys it after `LINGER_MS`.
 * Idempotent. Node's HTTP server resumes reading from several places (the request stream, drain handling),
 * so `resume` becomes a no-op on this one socket: it is closing and nothing may read from it any more.
 */
export function lingerAndClose(socket: Socket): void {
  if (lingering.has(socket)) return;
  lingering.add(socket);
  socket.resume = () => socket;
  socket.pause();
  socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

/**
 * For an error answer sent while the request body is still arriving: after the answer is written, Node's
 * HTTP server would destroy the socket at once (`Connection: close`); this makes it linger instead.
 */
export function closeAfterAnswer(socket: Socket | null | undefined): void {
  if (!socket || socket.destroyed) return;
  (socket as Socket & { destroySoon?: () => void }).destroySoon = () => lingerAndClose(socket);
}

function clientErrorOf(error: Error & { code?: string }): { code: ErrorCode; message: string } {
  switch (error.code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { code: "request_timeout", message: "The request did not arrive in time." };
    case "HPE_HEADER_OVERFLOW":
      return { code: "headers_too_large", message: "The request headers are larger than the limit." };
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return { code: "payload_too_large", message: "The chunk extensions are larger than the limit." };
    default:
      return {
        code: "bad_request",
        message: `Malformed HTTP request${error.code?.startsWith("HPE_") ? ` (${error.code})` : ""}.`,
      };
  }
}

/** Fastify `clientErrorHandler`: errors Node raises before a request reaches a route, in Mitte's error shape. */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  const serverSocket = socket as ServerSocket;
  if (error.code === "ECONNRESET" || error.code === "EPIPE" || socket.destroyed) {
    socket.destroy();
    return;
  }
  // A second parse error on a socket already being closed.
  if (lingering.has(socket)) return;
  // Only answer when no response has started on this socket, else the client would read a corrupt stream.
  if (!socket.writable || serverSocket._httpMessage?.headersSent) {
    socket.destroy();
    return;
  }
  const { code, message } = clientErrorOf(error);
  const status = errorStatus[code];
  const body = JSON.stringify(errorBody(code, message));
  socket.write(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
      "Connection: close\r\n" +
      "Content-Type: application/json; charset=utf-8\r\n" +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  lingerAndClose(socket);
}
