/**
 * Cursor pages over time-sortable ids: callers fetch `limit + 1` rows newest first; the extra row only
 * tells whether another page exists, and the cursor is the last id shown.
 */
export function toPage<Row, View extends { id: string }>(
  rows: readonly Row[],
  limit: number,
  toView: (row: Row) => View,
) {
  const data = rows.slice(0, limit).map(toView);
  return { data, nextCursor: rows.length > limit ? (data.at(-1)?.id ?? null) : null };
}
