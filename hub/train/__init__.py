"""Fine-tune a BERT-family student on (hard or soft) labels with accelerate."""
