/* Not part of the build: the cost of a MEMBARRIER_CMD_PRIVATE_EXPEDITED call alone, with another
   thread of the process running on core 1, and of a SeqCst fence. gcc -O2 -pthread mb.c */
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdio.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdatomic.h>
static atomic_int stop;
static void pin(int c){cpu_set_t s;CPU_ZERO(&s);CPU_SET(c,&s);sched_setaffinity(0,sizeof s,&s);}
static void* spin(void*a){pin(1);while(!stop){}return 0;}
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  pin(0);
  syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
  int n=200000;
  double t=now(); for(int i=0;i<n;i++) syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED,0,0);
  printf("alone: %.0f ns\n",(now()-t)/n*1e9);
  pthread_t th; pthread_create(&th,0,spin,0); usleep(100000);
  t=now(); for(int i=0;i<n;i++) syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED,0,0);
  printf("other thread running on core 1: %.0f ns\n",(now()-t)/n*1e9);
  stop=1; pthread_join(th,0);
  t=now(); for(int i=0;i<n;i++) atomic_thread_fence(memory_order_seq_cst);
  printf("fence: %.1f ns\n",(now()-t)/n*1e9);
}
