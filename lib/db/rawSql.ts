import { ColumnTypeEnum, type ArgType, type ColumnType, type SqlDriverAdapter, type SqlDriverAdapterFactory, type SqlQueryable, type SqlResultSet, type Transaction } from '@prisma/driver-adapter-utils';

/**
 * The CRM's own set-based statements, sent straight to the driver adapter Prisma reaches the
 * database through (pg's pool, or the PGlite a receiver lends its nodes). Prisma's raw queries
 * pass every statement and every row through its query interpreter and two conversions: in the
 * chain bench that cost more of n8n's one core than any node's own work. The values come out as
 * Prisma's `$queryRawUnsafe` gives them (Date, BigInt, parsed JSON), and the method names are
 * Prisma's, so a store takes either.
 */
export interface RawSql {
	$queryRawUnsafe<T = unknown>(sql: string, ...values: unknown[]): Promise<T>;
	$executeRawUnsafe(sql: string, ...values: unknown[]): Promise<number>;
}

export interface RawDatabase extends RawSql {
	/** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
	$transaction<T>(work: (tx: RawSql) => Promise<T>): Promise<T>;
	/** How many transactions can run at once: the pool's connections, 1 for an in-process PGlite. */
	readonly concurrency: number;
}

/**
 * A failed statement, as Prisma reports one (code P2010, the driver's error under
 * meta.driverAdapterError), so callers classify it the same whichever path sent it.
 */
export class RawQueryError extends Error {
	override name = 'RawQueryError';
	readonly code = 'P2010';

	constructor(readonly meta: { driverAdapterError: Error & { cause?: { originalCode?: string; originalMessage?: string; kind?: string } } }) {
		const cause = meta.driverAdapterError.cause;
		super(`Raw query failed. Code: \`${cause?.originalCode ?? 'N/A'}\`. Message: \`${cause?.originalMessage ?? meta.driverAdapterError.message}\``);
	}
}

const isDriverAdapterError = (error: unknown): error is RawQueryError['meta']['driverAdapterError'] =>
	error instanceof Error && error.name === 'DriverAdapterError' && typeof (error as { cause?: unknown }).cause === 'object';

/** The scalar type Prisma gives a raw parameter: it decides how the adapter writes dates. */
function scalarTypeOf(value: unknown): ArgType['scalarType'] {
	if (value instanceof Date) return 'datetime';
	if (typeof value === 'bigint') return 'bigint';
	if (typeof value === 'number') return 'decimal';
	if (typeof value === 'string') return 'string';
	return 'unknown';
}

function argTypeOf(value: unknown): ArgType {
	if (Array.isArray(value)) return { scalarType: value.length > 0 ? scalarTypeOf(value[0]) : 'unknown', arity: 'list' };
	return { scalarType: scalarTypeOf(value), arity: 'scalar' };
}

const isPlain = (value: unknown): value is string | number | boolean | null | undefined =>
	value === null || value === undefined || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';

const ESCAPED = /[\\"]/;
const ESCAPED_ALL = /[\\"]/g;

/**
 * A Postgres array literal of plain values, the text the drivers would send for the array. A
 * batch's columns are arrays of thousands of ids, texts and numbers, and the drivers passed every
 * element through two regular-expression replaces: for a Lead Scorer batch of 3,000 leads that
 * made 50 of the 217 MB it allocated. Texts are escaped only when they hold a quote or backslash,
 * and the literal is joined at once, not grown by a concatenation per element (each a string object
 * until the driver flattens it).
 */
function arrayLiteral(values: ReadonlyArray<string | number | boolean | null | undefined>): string {
	if (values.every((value) => typeof value === 'string')) return values.length === 0 ? '{}' : `{"${(values as readonly string[]).map(escaped).join('","')}"}`;
	return `{${values.map((value) => (value === null || value === undefined ? 'NULL' : typeof value === 'string' ? `"${escaped(value)}"` : String(value))).join(',')}}`;
}

const escaped = (text: string): string => (ESCAPED.test(text) ? text.replace(ESCAPED_ALL, '\\$&') : text);

/** A parameter as Prisma hands it to the adapter: dates and bytes as they are, big integers as text, other objects as JSON. */
function argOf(value: unknown): unknown {
	if (Array.isArray(value)) return value.every(isPlain) ? arrayLiteral(value) : value.map(argOf);
	if (typeof value === 'bigint') return value.toString();
	if (value !== null && typeof value === 'object' && !(value instanceof Date) && !ArrayBuffer.isView(value)) return JSON.stringify(value);
	return value;
}

type Converter = (value: unknown) => unknown;

const dateOf: Converter = (value) => new Date(value as string);
const eachOf =
	(convert: Converter): Converter =>
	(value) =>
		(value as unknown[]).map((element) => (element === null ? null : convert(element)));

/** The conversion that makes a column's values what Prisma's `$queryRawUnsafe` returns; null for a column whose values already are. */
function converterOf(type: ColumnType): Converter | null {
	switch (type) {
		case ColumnTypeEnum.Int32:
			return (value) => Math.trunc(Number(value));
		case ColumnTypeEnum.Int64:
			return (value) => BigInt(typeof value === 'number' ? Math.trunc(value) : (value as string));
		case ColumnTypeEnum.Numeric:
			// Prisma's Decimal would need decimal.js in every node; the exact text keeps every digit.
			return String;
		case ColumnTypeEnum.Json:
			return (value) => (typeof value === 'string' ? JSON.parse(value) : value);
		case ColumnTypeEnum.Boolean:
			return (value) => (typeof value === 'boolean' ? value : value === 'true' || value === '1' || value === 1);
		case ColumnTypeEnum.DateTime:
		case ColumnTypeEnum.Date:
			return dateOf;
		case ColumnTypeEnum.Time:
			return (value) => new Date(`1970-01-01T${value as string}Z`);
		case ColumnTypeEnum.Int32Array:
			return eachOf(converterOf(ColumnTypeEnum.Int32) as Converter);
		case ColumnTypeEnum.Int64Array:
			return eachOf(converterOf(ColumnTypeEnum.Int64) as Converter);
		case ColumnTypeEnum.JsonArray:
			return eachOf(converterOf(ColumnTypeEnum.Json) as Converter);
		case ColumnTypeEnum.BooleanArray:
			return eachOf(converterOf(ColumnTypeEnum.Boolean) as Converter);
		case ColumnTypeEnum.DateTimeArray:
		case ColumnTypeEnum.DateArray:
			return eachOf(dateOf);
		default:
			return null;
	}
}

/** The rows as records; each column's conversion is looked up once per result, not once per value. */
function rowsOf(result: SqlResultSet): Array<Record<string, unknown>> {
	const { columnNames, columnTypes, rows } = result;
	const width = columnNames.length;
	const converters = columnTypes.map(converterOf);
	return rows.map((row) => {
		const record: Record<string, unknown> = {};
		for (let column = 0; column < width; column++) {
			const value = row[column];
			const convert = converters[column];
			record[columnNames[column]] = value === null || convert === null ? value : convert(value);
		}
		return record;
	});
}

async function run<T>(statement: () => Promise<T>): Promise<T> {
	try {
		return await statement();
	} catch (error) {
		throw isDriverAdapterError(error) ? new RawQueryError({ driverAdapterError: error }) : error;
	}
}

class QueryableSql implements RawSql {
	constructor(private readonly queryable: () => Promise<SqlQueryable>) {}

	async $queryRawUnsafe<T = unknown>(sql: string, ...values: unknown[]): Promise<T> {
		const queryable = await this.queryable();
		const result = await run(() => queryable.queryRaw({ sql, args: values.map(argOf), argTypes: values.map(argTypeOf) }));
		return rowsOf(result) as T;
	}

	async $executeRawUnsafe(sql: string, ...values: unknown[]): Promise<number> {
		const queryable = await this.queryable();
		return await run(() => queryable.executeRaw({ sql, args: values.map(argOf), argTypes: values.map(argTypeOf) }));
	}
}

const statement = (sql: string) => ({ sql, args: [], argTypes: [] });

/**
 * Ends a transaction the way Prisma's transaction manager does: adapters whose transaction is a
 * real BEGIN get COMMIT or ROLLBACK sent, the others (PGlite's, a "phantom" one) end it themselves.
 */
async function finish(tx: Transaction, outcome: 'commit' | 'rollback'): Promise<void> {
	if (tx.options.usePhantomQuery) {
		await (outcome === 'commit' ? tx.commit() : tx.rollback());
		return;
	}
	if (outcome === 'rollback') {
		try {
			await tx.executeRaw(statement('ROLLBACK'));
		} finally {
			await tx.rollback();
		}
		return;
	}
	try {
		await tx.executeRaw(statement('COMMIT'));
	} catch (error) {
		await tx.rollback();
		throw error;
	}
	await tx.commit();
}

class AdapterDatabase extends QueryableSql implements RawDatabase {
	constructor(
		private readonly adapter: () => Promise<SqlDriverAdapter>,
		readonly concurrency: number,
	) {
		super(adapter);
	}

	async $transaction<T>(work: (tx: RawSql) => Promise<T>): Promise<T> {
		const adapter = await this.adapter();
		const tx = await run(() => adapter.startTransaction());
		let result: T;
		try {
			result = await work(new QueryableSql(async () => tx));
		} catch (error) {
			await finish(tx, 'rollback').catch(() => undefined);
			throw error;
		}
		await run(() => finish(tx, 'commit'));
		return result;
	}
}

/**
 * One adapter for a Prisma client and the raw statements beside it, so both use one pool: the
 * factory Prisma gets hands out the adapter `database` sends through. Either side may be the
 * first to open it; `close` (or Prisma's disconnect) disposes it once, and the next use opens a
 * new one. `concurrency`: the connections the factory pools (1 for PGlite, which has one).
 */
export function sharedAdapter(factory: SqlDriverAdapterFactory, concurrency = 1): { factory: SqlDriverAdapterFactory; database: RawDatabase; close(): Promise<void> } {
	let current: Promise<SqlDriverAdapter> | undefined;
	const open = (): Promise<SqlDriverAdapter> =>
		(current ??= factory.connect().then((adapter): SqlDriverAdapter => {
			let disposed: Promise<void> | undefined;
			return {
				provider: adapter.provider,
				adapterName: adapter.adapterName,
				queryRaw: (query) => adapter.queryRaw(query),
				executeRaw: (query) => adapter.executeRaw(query),
				executeScript: (script) => adapter.executeScript(script),
				startTransaction: (isolationLevel) => adapter.startTransaction(isolationLevel),
				...(adapter.getConnectionInfo ? { getConnectionInfo: () => adapter.getConnectionInfo!() } : {}),
				dispose: () => {
					if (disposed) return disposed;
					current = undefined;
					return (disposed = adapter.dispose());
				},
			};
		}, (error: unknown) => {
			current = undefined;
			throw error;
		}));
	return {
		factory: { provider: factory.provider, adapterName: factory.adapterName, connect: open },
		database: new AdapterDatabase(open, concurrency),
		close: async () => {
			const opened = current;
			if (opened) await (await opened).dispose();
		},
	};
}
