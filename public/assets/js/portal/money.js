// Dollars typed by a customer → integer cents, read from the decimal string itself: "19.99"
// is 1999 exactly, with no binary floating point in between (19.99 * 100 is 1998.9999…).

const DOLLARS = /^\$?\s*(\d{1,3}(?:,\d{3})+|\d+)?(?:\.(\d{0,2}))?$/;

/**
 * "12", "12.5", "$1,250.00", ".75" → 1200, 1250, 125000, 75. Returns null for an empty
 * field; throws Error with a sentence for anything else (letters, a minus, three decimals).
 */
export function parseDollars(raw) {
  const text = String(raw ?? "").trim();
  if (text === "") return null;
  const match = DOLLARS.exec(text);
  if (!match || (match[1] === undefined && !match[2])) {
    throw new Error("Enter an amount in dollars, like 25 or 19.99 (at most two decimals).");
  }
  const whole = (match[1] || "0").replaceAll(",", "");
  const fraction = (match[2] || "").padEnd(2, "0");
  const cents = BigInt(whole) * 100n + BigInt(fraction || "0");
  if (cents > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error("That amount is too large.");
  return Number(cents);
}

/** Cents → the dollar text an input shows (1999 → "19.99", 2000 → "20"), "" for null. */
export function centsToDollarText(cents) {
  if (cents === null || cents === undefined || cents === "") return "";
  const n = Math.round(Number(cents));
  const whole = Math.trunc(n / 100);
  const rest = Math.abs(n % 100);
  return rest ? `${whole}.${String(rest).padStart(2, "0")}` : String(whole);
}
