/**
 * Whose a conversion is. The Conversion Detector records a conversion with the lead its browser
 * had at that moment; the Lead Scorer may link the browser to a lead only later (the contact form
 * that makes the lead is itself often the conversion, and both workflows run at once). So a
 * conversion is a lead's when it names the lead, or when its browser is linked to the lead now:
 * these two fragments say that one rule, for a lead's conversions and for a conversion's lead.
 */

/** A condition on a conversion row `c` of the site ($1): it is the lead's (`lead`, an SQL expression). */
export const isConversionOfLead = (lead: string) =>
	`c.site_id = $1::uuid AND (c.lead_id = ${lead} OR c.visitor_id IN (SELECT v.id FROM visitors v WHERE v.site_id = $1::uuid AND v.lead_id = ${lead}))`;

/** The join that gives a conversion row `c` its browser `cv`, for {@link CONVERSION_LEAD}. */
export const CONVERSION_BROWSER = 'LEFT JOIN visitors cv ON cv.id = c.visitor_id';

/** The lead of a conversion row `c` joined by {@link CONVERSION_BROWSER}; null for a browser that is no lead. */
export const CONVERSION_LEAD = 'coalesce(c.lead_id, cv.lead_id)';
