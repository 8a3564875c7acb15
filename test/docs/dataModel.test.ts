import { readFileSync } from 'node:fs';

import { DATA_MODEL_FILE, dataModelDocument, erDiagram, parseSchema, SCHEMA_FILE } from '../../scripts/schema-diagram';

/**
 * docs/data-model.md is generated from prisma/schema.prisma by scripts/schema-diagram.ts; a schema
 * change without regenerating the page fails here, so the page never describes another schema.
 */

const schema = readFileSync(SCHEMA_FILE, 'utf8');

describe('docs/data-model.md', () => {
	it('is exactly what scripts/schema-diagram.ts makes of the current prisma/schema.prisma', () => {
		const onDisk = readFileSync(DATA_MODEL_FILE, 'utf8');
		const wanted = dataModelDocument(schema);
		if (onDisk !== wanted) {
			const lines = onDisk.split('\n');
			const first = wanted.split('\n').findIndex((line, index) => line !== lines[index]);
			throw new Error(
				`docs/data-model.md is out of date with prisma/schema.prisma (first difference at line ${first + 1}: ` +
					`${JSON.stringify(lines[first] ?? '(end of file)')}, expected ${JSON.stringify(wanted.split('\n')[first])}). ` +
					'Regenerate it: npm run build && node dist/scripts/schema-diagram.js',
			);
		}
	});

	it('draws every table of the schema, with the name @@map gives it, and every enum', () => {
		const tables = [...schema.matchAll(/@@map\("([^"]+)"\)/g)].map((match) => match[1]);
		const models = [...schema.matchAll(/^model (\w+) \{/gm)].length;
		const enums = [...schema.matchAll(/^enum (\w+) \{/gm)].length;
		const parsed = parseSchema(schema);
		expect(parsed.models).toHaveLength(models);
		expect(parsed.enums).toHaveLength(enums);
		const diagram = erDiagram(parsed);
		for (const table of parsed.models.map((model) => model.table)) {
			expect(tables).toContain(table);
			expect(diagram).toContain(`\n  ${table} {\n`);
		}
	});

	it('draws each foreign key once, from the referenced table, with its column and whether it is required or unique', () => {
		const parsed = parseSchema(`
/// A parent.
model Parent {
  id String @id @db.Uuid
  kids Kid[]
  only Only?
  @@map("parents")
}

enum Mood {
  calm
  @@map("mood")
}

/// A child; its parent may go.
model Kid {
  id       String  @id
  /// Which parent, if any.
  parentId String? @map("parent_id") // trailing "comment" // with slashes
  mood     Mood
  tags     String[]
  parent   Parent? @relation(fields: [parentId], references: [id])
  @@unique([parentId, mood])
  @@map("kids")
}

model Only {
  parentId String @unique @map("parent_id")
  at       DateTime @db.Timestamptz(3)
  parent   Parent @relation(fields: [parentId], references: [id])
  @@map("onlies")
}
`);
		const diagram = erDiagram(parsed).split('\n');
		expect(diagram).toContain('  parents |o--o{ kids : "parent_id"');
		expect(diagram).toContain('  parents ||--o| onlies : "parent_id"');
		expect(diagram).toContain('    text parent_id FK "nullable"');
		expect(diagram).toContain('    mood mood');
		expect(diagram).toContain('    text[] tags');
		expect(diagram).toContain('    uuid id PK');
		expect(diagram).toContain('    timestamptz at');
		expect(diagram).toContain('    text parent_id FK, UK');
		expect(diagram.filter((line) => line.includes('--'))).toHaveLength(2);
		expect(parsed.models.find((model) => model.table === 'kids')).toMatchObject({ doc: 'A child; its parent may go.', compositeUniques: [['parent_id', 'mood']] });
		expect(parsed.models.find((model) => model.table === 'kids')!.fields[1].doc).toBe('Which parent, if any.');
	});

	it('refuses a line it cannot read instead of leaving a column out', () => {
		expect(() => parseSchema('model Broken {\n  id String @id\n  = nonsense\n}\n')).toThrow(/cannot read the line "= nonsense" of model Broken/);
	});
});
