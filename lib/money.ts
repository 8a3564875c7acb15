const wholeAmounts = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const centAmounts = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/**
 * Every amount of money the dashboards show: 50 → "50", 49.9 → "49.90", 1234.5 → "1,234.50"; with
 * a currency, "50 EUR". Values arrive as Decimal(14, 4) text or numbers, and a reader should never
 * see the stored scale ("50.0000"), not even in the text of a conversion activity.
 */
export function formatMoney(value: number | string, currency?: string | null): string {
	const cents = Math.round(Number(value) * 100);
	// `|| 0`: a tiny negative amount rounds to -0, which would read "-0".
	const amount = (cents % 100 === 0 ? wholeAmounts : centAmounts).format(cents / 100 || 0);
	return currency ? `${amount} ${currency}` : amount;
}
