/* main.c - samsa-broker entry point (placeholder until the server lands). */
#include <stdio.h>
int main(void) { fprintf(stderr, "samsa-broker: not yet\n"); return 1; }
