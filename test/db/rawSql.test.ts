import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlDriverAdapterFactory } from '@prisma/driver-adapter-utils';

import { openDatabase } from '../../lib/db';
import { PrismaClient } from '../../lib/db/generated/client';
import { RawQueryError, sharedAdapter, type RawDatabase } from '../../lib/db/rawSql';
import { testDbUrl } from '../helpers/db';

/** One column of every type the nodes read, and parameters of every kind they send. */
const EVERY_TYPE = `
SELECT 7::int AS small, 9007199254740993::bigint AS big, 2.5::float8 AS double, true AS yes, 'text'::text AS words,
	'018f2c1e-7a40-7000-8000-000000000001'::uuid AS id, '2026-12-06T07:00:00.123Z'::timestamptz AS at, '2026-12-06'::date AS day,
	'{"a": [1, "two", null], "b": {"c": true}}'::jsonb AS doc, ARRAY['x', 'y']::text[] AS labels, ARRAY[1, 2]::int[] AS numbers,
	ARRAY['2026-01-01T00:00:00Z'::timestamptz] AS times, NULL::text AS nothing,
	$1::timestamptz AS given_at, $2::timestamptz[] AS given_times, $3::text[] AS given_labels, $4::float8 AS given_number,
	$5::boolean AS given_flag, $6::jsonb AS given_doc, $7::bigint AS given_big, $8::uuid[] AS given_ids`;

const PARAMETERS = [
	new Date('2026-12-06T08:09:10.011Z'),
	[new Date('2026-12-01T00:00:00.000Z'), new Date('2026-12-02T12:30:00.500Z')],
	['a', 'b'],
	1.25,
	false,
	JSON.stringify({ deep: { list: [1, 2] } }),
	12345678901234n,
	['018f2c1e-7a40-7000-8000-000000000002'],
] as const;

describe('raw statements beside Prisma', () => {
	// One migrated PGlite for every test: opening one takes seconds.
	const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tcrm-rawsql-'));
	let embedded: Awaited<ReturnType<typeof openDatabase>>;
	beforeAll(async () => {
		embedded = await openDatabase({ url: null, dataDir });
	});
	afterAll(async () => {
		await embedded.close();
		rmSync(dataDir, { recursive: true, force: true });
	});

	async function onEach(run: (db: RawDatabase, prisma: PrismaClient, label: string) => Promise<void>): Promise<void> {
		const targets: Array<[string, SqlDriverAdapterFactory]> = [
			['Postgres', new PrismaPg({ connectionString: testDbUrl() })],
			['PGlite', embedded.adapter],
		];
		for (const [label, factory] of targets) {
			const shared = sharedAdapter(factory);
			const prisma = new PrismaClient({ adapter: shared.factory });
			try {
				await run(shared.database, prisma, label);
			} finally {
				await prisma.$disconnect();
				await shared.close();
			}
		}
	}

	it('give every value as Prisma’s $queryRawUnsafe does, on Postgres and on PGlite', async () => {
		await onEach(async (db, prisma, label) => {
			const [raw] = await db.$queryRawUnsafe<Array<Record<string, unknown>>>(EVERY_TYPE, ...PARAMETERS);
			const [viaPrisma] = await prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(EVERY_TYPE, ...PARAMETERS);
			expect({ label, row: raw }).toEqual({ label, row: viaPrisma });
			expect(raw.big).toBe(9007199254740993n);
			expect(raw.at).toEqual(new Date('2026-12-06T07:00:00.123Z'));
			expect(raw.given_at).toEqual(PARAMETERS[0]);
			expect(raw.given_times).toEqual(PARAMETERS[1]);
			expect(raw.doc).toEqual({ a: [1, 'two', null], b: { c: true } });
			expect(raw.given_big).toBe(12345678901234n);
		});
	});

	it('give numeric columns as their exact text', async () => {
		await onEach(async (db) => {
			expect(await db.$queryRawUnsafe(`SELECT 10.5000::numeric(14, 4) AS value`)).toEqual([{ value: '10.5000' }]);
		});
	});

	it('send arrays of texts, numbers and flags element for element, whatever characters the texts hold', async () => {
		const texts = ['plain', 'with "quotes"', 'back\\slash', 'a,b', '{braces}', 'NULL', '', ' spaced ', 'ünï 🎉', "it's", null, '\\"both\\"', 'NuLl', 'tab\there', 'line\nbreak', '018f2c1e-7a40-7000-8000-000000000001', '-42'];
		const numbers = [0, -1.5, 1e-7, 123456789.125, null];
		const flags = [true, false, null];
		await onEach(async (db, prisma, label) => {
			const statement = `SELECT $1::text[] AS texts, $2::float8[] AS numbers, $3::boolean[] AS flags, cardinality($1::text[]) AS count, array_position($1::text[], NULL) AS null_at`;
			const [raw] = await db.$queryRawUnsafe<Array<Record<string, unknown>>>(statement, texts, numbers, flags);
			expect({ label, raw }).toEqual({ label, raw: { texts, numbers, flags, count: texts.length, null_at: 11 } });
			const [viaPrisma] = await prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(statement, texts, numbers, flags);
			expect({ label, row: raw }).toEqual({ label, row: viaPrisma });
		});
	});

	it('commit a transaction that resolves and leave nothing of one that throws, the pool shared with Prisma', async () => {
		await onEach(async (db, prisma, label) => {
			const table = `raw_sql_${label.toLowerCase()}_${Date.now()}`;
			await db.$executeRawUnsafe(`CREATE TABLE ${table} (n int PRIMARY KEY)`);
			try {
				expect(await db.$transaction(async (tx) => await tx.$executeRawUnsafe(`INSERT INTO ${table} VALUES (1), (2)`))).toBe(2);
				await expect(
					db.$transaction(async (tx) => {
						await tx.$executeRawUnsafe(`INSERT INTO ${table} VALUES (3)`);
						throw new Error('the work failed');
					}),
				).rejects.toThrow('the work failed');
				await expect(db.$transaction(async (tx) => await tx.$executeRawUnsafe(`INSERT INTO ${table} VALUES (4), (1)`))).rejects.toThrow(RawQueryError);
				expect(await prisma.$queryRawUnsafe(`SELECT n FROM ${table} ORDER BY n`)).toEqual([{ n: 1 }, { n: 2 }]);
			} finally {
				await db.$executeRawUnsafe(`DROP TABLE ${table}`);
			}
		});
	});

	it('report a failed statement as Prisma does, with the driver’s code for callers to classify', async () => {
		await onEach(async (db) => {
			const error = await db.$queryRawUnsafe('SELECT * FROM no_such_table').catch((caught: unknown) => caught);
			expect(error).toBeInstanceOf(RawQueryError);
			expect(error).toMatchObject({ code: 'P2010', meta: { driverAdapterError: { cause: { kind: 'TableDoesNotExist', originalCode: '42P01' } } } });
			expect((error as Error).message).toContain('Code: `42P01`');
		});
	});

	it('reopen the shared pool after it was closed', async () => {
		const shared = sharedAdapter(new PrismaPg({ connectionString: testDbUrl() }));
		expect(await shared.database.$queryRawUnsafe('SELECT 1 AS one')).toEqual([{ one: 1 }]);
		await shared.close();
		await shared.close();
		expect(await shared.database.$queryRawUnsafe('SELECT 2 AS two')).toEqual([{ two: 2 }]);
		await shared.close();
	});
});
