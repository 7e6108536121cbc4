import type { TaskRecord } from '../domain/task.ts';

/**
 * Task records whose change is already on the bus: the PostgreSQL store announces a change in the
 * transaction that writes it when the bus is LISTEN/NOTIFY on the same database (one round trip
 * less per change, and a change is announced exactly when it commits). Publishing such a record
 * again would send the change twice. Held weakly: a record is forgotten with its last reference.
 */
const announced = new WeakSet<TaskRecord>();

export function markAnnounced(task: TaskRecord): TaskRecord {
  announced.add(task);
  return task;
}

export function wasAnnounced(task: TaskRecord): boolean {
  return announced.has(task);
}
