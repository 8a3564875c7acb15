import { CHANNELS } from '../../nodes/shared/channels';
import type { ReportFilter } from '../analytics/filters';
import { cleanText } from '../routes/inputs';
import { z } from 'zod/v4';

/**
 * The dashboards' filter form: channel, UTM campaign and page, read from the page's query. Each
 * value is checked before it reaches a query; a wrong one is named by the label the form shows.
 */

export interface FilterQuery {
	channel?: string;
	campaign?: string;
	page?: string;
}

/** What the form shows: as typed, '' for unset. */
export type ChosenFilter = Required<FilterQuery>;

const CHANNEL_LIST = CHANNELS.join(', ');

/**
 * Each filter's rule, for the pages' form and the JSON visitors report alike. Text is trimmed
 * first, as the form's value is: a URL must not mean something else than the page that made it.
 * The form reads a blank field as "any"; a URL that names a filter and gives it no value is a
 * mistake, so the schemas refuse it (the form never passes them one).
 */
export const FILTER_SCHEMAS = {
	channel: z.enum(CHANNELS, {
		error: (issue) =>
			typeof issue.input === 'string' && !issue.input.trim()
				? `must not be empty: give one of ${CHANNEL_LIST}, or leave the parameter out`
				: `must be one of ${CHANNEL_LIST}${typeof issue.input === 'string' && (CHANNELS as readonly string[]).includes(issue.input.trim()) ? ', without spaces around it' : ''}`,
	}),
	campaign: cleanText(
		z
			.string()
			.trim()
			.min(1, { error: 'must not be empty: give a UTM campaign name, or leave the parameter out' })
			.max(200, { error: 'may be at most 200 characters' }),
	),
	page: cleanText(
		z
			.string()
			.trim()
			.min(1, { error: 'must not be empty: give a path such as /pricing, or leave the parameter out', abort: true })
			.max(2000, { error: 'may be at most 2,000 characters' }),
	).refine((value) => value.startsWith('/'), {
		error: 'must be a path starting with / (such as /pricing)',
	}),
};

const FIELDS = {
	channel: { label: 'Channel', schema: FILTER_SCHEMAS.channel },
	campaign: { label: 'Campaign', schema: FILTER_SCHEMAS.campaign },
	page: { label: 'Page', schema: FILTER_SCHEMAS.page },
} as const;

export type FilterResult = { ok: true; filter: ReportFilter; chosen: ChosenFilter } | { ok: false; field: string; message: string; chosen: ChosenFilter };

export function resolveFilter(query: FilterQuery): FilterResult {
	const chosen: ChosenFilter = { channel: query.channel?.trim() ?? '', campaign: query.campaign?.trim() ?? '', page: query.page?.trim() ?? '' };
	const filter: ReportFilter = {};
	for (const name of ['channel', 'campaign', 'page'] as const) {
		if (!chosen[name]) continue;
		const parsed = FIELDS[name].schema.safeParse(chosen[name]);
		if (!parsed.success) return { ok: false, field: FIELDS[name].label, message: parsed.error.issues[0].message, chosen };
		filter[name] = parsed.data;
	}
	return { ok: true, filter, chosen };
}

/** The query string that keeps the same filters (appended to the period's). */
export function filterQuery(chosen: ChosenFilter): string {
	const params = new URLSearchParams();
	for (const name of ['channel', 'campaign', 'page'] as const) if (chosen[name]) params.set(name, chosen[name]);
	return params.toString();
}

export const CHANNEL_OPTIONS: readonly string[] = CHANNELS;
