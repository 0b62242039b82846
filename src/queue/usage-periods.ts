/** The UTC day and month a recipient's usage is counted in, and when each period ends. */

export interface UsagePeriods {
  /** 'YYYY-MM-DD' */
  day: string;
  /** 'YYYY-MM' */
  month: string;
  /** Start of the next UTC day, in ms. */
  dayEndsAt: number;
  /** Start of the next UTC month, in ms. */
  monthEndsAt: number;
}

export function usagePeriods(at: number): UsagePeriods {
  const date = new Date(at);
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth();
  const day = date.toISOString().slice(0, 10);
  return {
    day,
    month: day.slice(0, 7),
    dayEndsAt: Date.UTC(y, m, date.getUTCDate() + 1),
    monthEndsAt: Date.UTC(y, m + 1, 1),
  };
}
