// Money and dates written as the HTMX pages write them (app/templating.py: `money`, `date`),
// so the two clients agree: "$1,234.50", "2026-12-03 05:53" and "03 December 2026", in UTC.

/** "$1,234.50" from the API's two-decimal string, grouped without going through a float. */
export function money(price: string): string {
  const negative = price.startsWith("-");
  const [whole = "0", cents = "00"] = price.replace(/^-/, "").split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}$${grouped}.${cents.padEnd(2, "0").slice(0, 2)}`;
}

/** "2026-12-03 05:53" (UTC), or "—" for no date. */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  return new Date(iso).toISOString().slice(0, 16).replace("T", " ");
}

const LONG = new Intl.DateTimeFormat("en-GB", { day: "2-digit", month: "long", year: "numeric", timeZone: "UTC" });

/** "03 December 2026" (UTC). */
export function longDate(iso: string): string {
  return LONG.format(new Date(iso));
}
