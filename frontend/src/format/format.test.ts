import { describe, expect, it } from "vitest";
import { dateTime, longDate, money } from "./format";

describe("format, as the HTMX pages write it", () => {
  it("writes money with a dollar sign, thousands grouped, exactly two decimals", () => {
    expect(money("9.99")).toBe("$9.99");
    expect(money("1234567.50")).toBe("$1,234,567.50");
    expect(money("0.00")).toBe("$0.00");
    expect(money("999999999999.99")).toBe("$999,999,999,999.99"); // no float rounding
    expect(money("-12.30")).toBe("-$12.30");
  });

  it("writes times in UTC to the minute, and long dates day first", () => {
    expect(dateTime("2026-12-03T05:53:59.999+00:00")).toBe("2026-12-03 05:53");
    expect(dateTime("2026-12-03T01:00:00+02:00")).toBe("2026-12-02 23:00");
    expect(dateTime(null)).toBe("—");
    expect(longDate("2026-12-03T23:30:00Z")).toBe("03 December 2026");
  });
});
