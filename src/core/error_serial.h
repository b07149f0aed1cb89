/* error_serial.h - how many errors this thread has recorded (error.c), so that a call can
 * tell whether the message in the record is its own: the per-solver record of
 * src/solver/api_calls.c copies it only then. */
#ifndef GFV_CORE_ERROR_SERIAL_H
#define GFV_CORE_ERROR_SERIAL_H

unsigned long gfv_error_serial(void);

#endif
