/**
 * The HTTP API's input schemas, shared by the server, the CLI and (later) the dashboard and MCP tools.
 * Output shapes are plain interfaces: the server builds them, clients read them.
 */

export * from "./accounts.js";
export * from "./api-keys.js";
export * from "./endpoints.js";
export * from "./logs.js";
export * from "./notifications.js";
export * from "./pagination.js";
