import { describe, expect, it } from "vitest";
import { withoutCredentials } from "./url-credentials.js";

describe("withoutCredentials", () => {
  it("drops user and password and keeps the rest", () => {
    expect(withoutCredentials("redis://:s3cret@127.0.0.1:6379/2")).toBe("redis://127.0.0.1:6379/2");
    expect(withoutCredentials("postgres://mitte:pw@db.internal:5432/mitte?sslmode=require")).toBe(
      "postgres://db.internal:5432/mitte?sslmode=require",
    );
    expect(withoutCredentials("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
    expect(withoutCredentials("not a url with pw:secret@")).toBe("(an unparsable URL)");
  });
});
