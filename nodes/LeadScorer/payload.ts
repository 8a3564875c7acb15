import type { IDataObject } from 'n8n-workflow';
import { z } from 'zod/v4';

import { formatIssues, toFieldIssues } from '../../lib/contracts/issues';
import { leadPayloadSchema, type LeadPayload } from '../../lib/contracts/lead';
import { InputError } from '../shared/inputError';

/** Identify calls arrive as flat items (`{ site, email, anonymousId, … }`) rather than under `lead`. */
const itemPayloadSchema = leadPayloadSchema.extend({ site: z.string().optional() });
const PAYLOAD_FIELDS = Object.keys(itemPayloadSchema.shape);

/** The lead payload of an item: a receiver delivery (`{ lead: {…}, country }`) or a flat identify call. */
export function payloadOf(json: IDataObject): LeadPayload {
	const nested = json.lead !== null && typeof json.lead === 'object' && !Array.isArray(json.lead);
	const source = (nested ? json.lead : json) as IDataObject;
	const input = Object.fromEntries(PAYLOAD_FIELDS.filter((key) => source[key] !== undefined && source[key] !== null).map((key) => [key, source[key]]));
	const prefix = nested ? 'lead.' : '';
	const parsed = itemPayloadSchema.safeParse(input);
	if (!parsed.success) {
		const issues = toFieldIssues(parsed.error as z.ZodError, input);
		throw new InputError(`${prefix}${issues[0]?.field ?? 'email'}`, `The item is not a lead:\n${formatIssues(issues)}`);
	}
	const payload = { ...parsed.data, site: parsed.data.site ?? String(json.site ?? '') };
	// The receiver passes the country of the request (geo headers) beside the payload.
	if (!payload.country && typeof json.country === 'string' && /^[A-Za-z]{2}$/.test(json.country)) payload.country = json.country.toUpperCase();
	return payload;
}
