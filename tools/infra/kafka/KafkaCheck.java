// Probe for tools/infra, run against the jars in .cache/infra/kafka/<version>/libs.
//   KafkaCheck ready <bootstrap> <timeoutMs>  waits until a Metadata request (describeCluster) lists a broker
//   KafkaCheck smoke <bootstrap>              creates topic infra-smoke, produces one record, consumes it back
// Prints one line; exit 0 on success, 1 on failure.
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class KafkaCheck {
  public static void main(String[] args) {
    try {
      if (args.length >= 3 && args[0].equals("ready")) {
        ready(args[1], Long.parseLong(args[2]));
      } else if (args.length >= 2 && args[0].equals("smoke")) {
        smoke(args[1]);
      } else {
        System.out.println("usage: KafkaCheck ready <bootstrap> <timeoutMs> | smoke <bootstrap>");
        System.exit(2);
      }
      System.exit(0);
    } catch (Exception e) {
      Throwable c = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
      System.out.println("kafka check failed: " + c.getClass().getSimpleName() + ": " + c.getMessage());
      System.exit(1);
    }
  }

  private static Properties base(String bootstrap) {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(AdminClientConfig.CLIENT_ID_CONFIG, "lading-infra-check");
    p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
    p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
    p.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
    p.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
    return p;
  }

  private static void ready(String bootstrap, long timeoutMs) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
    Exception last = null;
    try (Admin admin = Admin.create(base(bootstrap))) {
      while (System.nanoTime() < deadline) {
        try {
          var cluster = admin.describeCluster(new DescribeClusterOptions().timeoutMs(3000));
          var nodes = cluster.nodes().get(4, TimeUnit.SECONDS);
          String id = cluster.clusterId().get(4, TimeUnit.SECONDS);
          if (!nodes.isEmpty()) {
            Node n = nodes.iterator().next();
            System.out.println("kafka ready: cluster " + id + ", broker " + n.id() + " at " + n.host() + ":" + n.port());
            return;
          }
        } catch (Exception e) {
          last = e;
        }
        Thread.sleep(250);
      }
    }
    throw last != null ? last : new IllegalStateException("no broker in metadata after " + timeoutMs + " ms");
  }

  private static void smoke(String bootstrap) throws Exception {
    String topic = "infra-smoke";
    try (Admin admin = Admin.create(base(bootstrap))) {
      try {
        admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(10, TimeUnit.SECONDS);
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof TopicExistsException)) throw e;
      }
    }
    String value = "smoke " + UUID.randomUUID();
    Properties pp = base(bootstrap);
    pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    pp.put(ProducerConfig.ACKS_CONFIG, "all");
    long offset;
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
      offset = producer.send(new ProducerRecord<>(topic, "k", value)).get(10, TimeUnit.SECONDS).offset();
    }
    Properties cp = base(bootstrap);
    cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    cp.put(ConsumerConfig.GROUP_ID_CONFIG, "lading-infra-smoke");
    cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
      consumer.subscribe(Set.of(topic));
      while (System.nanoTime() < deadline) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
          if (value.equals(r.value())) {
            consumer.commitSync(Duration.ofSeconds(5));
            System.out.println("kafka smoke ok: topic " + topic + " created, record produced at offset " + offset
                + " and consumed by group lading-infra-smoke");
            return;
          }
        }
      }
    }
    throw new IllegalStateException("produced record was not consumed within 30 s");
  }

  private KafkaCheck() {}
}
