-- When each change was noted, so a read that leaves the fold to the receiver's job can say how far back its figures may be (server/analytics/rollup.ts).
-- AlterTable
ALTER TABLE "analytics_dirty_hours" ADD COLUMN     "noted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;
